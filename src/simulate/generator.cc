#include "simulate/generator.h"

#include <memory>

#include "simulate/engine.h"

namespace teiten::simulate {

SourceRangeIndex::SourceRangeIndex(const std::vector<SourceRange>& ranges) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    const SourceRange& r = ranges[i];
    if (r.last < r.first) {
      if (error_.empty()) error_ = "ranges[" + std::to_string(i) + "]: last before first";
      continue;
    }
    Country& c = by_country_[std::string(r.country.data(), 2)];
    c.ranges.push_back(r);
    c.cum.push_back((c.cum.empty() ? 0 : c.cum.back()) + (uint64_t{r.last} - r.first + 1));
  }
}

const SourceRangeIndex::Country* SourceRangeIndex::Find(std::string_view cc) const {
  auto it = by_country_.find(cc);
  return it == by_country_.end() ? nullptr : &it->second;
}

Status WriteTrace(const GeneratorSpec& spec, const std::vector<SourceRange>& ranges,
                  const std::string& pcap_path, GroundTruth* truth) {
  return WriteTrace(spec, SourceRangeIndex(ranges), pcap_path, truth);
}

Result<SharedPopulation> BuildSharedPopulation(const GeneratorSpec& spec,
                                               const SourceRangeIndex& ranges) {
  ASSIGN_OR_RETURN(std::unique_ptr<engine::Population> pop,
                   engine::Engine::BuildShared(spec, ranges));
  return SharedPopulation(std::move(pop));
}

Status WriteTraceTo(const GeneratorSpec& spec, const SourceRangeIndex& ranges, PcapWriter* writer,
                    GroundTruth* truth, bool with_sources, const engine::Population* population) {
  auto engine = std::make_unique<engine::Engine>(spec, ranges, population);
  RETURN_IF_ERROR(engine->Prepare());
  RETURN_IF_ERROR(engine->Run(writer));
  if (truth != nullptr) engine->FillTruth(truth, with_sources);
  return OkStatus();
}

Status WriteTrace(const GeneratorSpec& spec, const SourceRangeIndex& ranges,
                  const std::string& pcap_path, GroundTruth* truth) {
  auto engine = std::make_unique<engine::Engine>(spec, ranges);
  RETURN_IF_ERROR(engine->Prepare());
  ASSIGN_OR_RETURN(std::unique_ptr<PcapWriter> writer,
                   PcapWriter::Create(pcap_path, kLinkEthernet));
  RETURN_IF_ERROR(engine->Run(writer.get()));
  RETURN_IF_ERROR(writer->Finish());
  if (truth != nullptr) engine->FillTruth(truth);
  return OkStatus();
}

}  // namespace teiten::simulate
