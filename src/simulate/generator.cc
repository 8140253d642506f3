#include "simulate/generator.h"

#include <memory>

#include "simulate/engine.h"

namespace teiten::simulate {

Status WriteTrace(const GeneratorSpec& spec, const std::vector<SourceRange>& ranges,
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
