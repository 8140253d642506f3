// teiten-gen-flood: a hostile capture for the store's bounds (issue 10, SPEC §4 and §5): every
// packet a new random IPv4 source (a spoofed SYN flood at its worst), a share of them to random
// destination ports, spread evenly over a number of days. Deterministic for a seed.
//   teiten-gen-flood OUT.pcap PACKETS DAYS [RANDOM_PORT_SHARE=0.25] [SEED=1]
// Destinations are in 203.0.113.0/24; the first day is 2018-07-01 00:00 UTC.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

uint64_t Next(uint64_t* s) {  // splitmix64
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s OUT.pcap PACKETS DAYS [RANDOM_PORT_SHARE] [SEED]\n", argv[0]);
    return 2;
  }
  FILE* f = std::fopen(argv[1], "wb");
  if (!f) {
    std::perror(argv[1]);
    return 1;
  }
  const uint64_t n = std::strtoull(argv[2], nullptr, 10);
  const uint64_t days = std::strtoull(argv[3], nullptr, 10);
  const double share = argc > 4 ? std::atof(argv[4]) : 0.25;
  uint64_t seed = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 1;
  const uint32_t header[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  std::fwrite(header, 4, 6, f);
  constexpr uint32_t kStart = 1530403200;  // 2018-07-01T00:00:00Z
  const uint64_t span_us = days * 86400ull * 1000000;
  const uint16_t common[] = {23, 445, 80, 22, 3389, 8080, 1433, 2323};
  uint8_t rec[16 + 54] = {};
  uint8_t* fr = rec + 16;
  fr[12] = 0x08;
  uint8_t* ip = fr + 14;
  ip[0] = 0x45;
  ip[3] = 40;
  ip[8] = 64;
  ip[9] = 6;
  uint8_t* tcp = ip + 20;
  tcp[12] = 0x50;
  tcp[13] = 0x02;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t r = Next(&seed), r2 = Next(&seed);
    uint64_t t = static_cast<uint64_t>(kStart) * 1000000 + (span_us * i) / (n ? n : 1);
    uint32_t h[4] = {static_cast<uint32_t>(t / 1000000), static_cast<uint32_t>(t % 1000000), 54,
                     54};
    for (int k = 0; k < 4; ++k) {
      for (int b = 0; b < 4; ++b) rec[4 * k + b] = static_cast<uint8_t>(h[k] >> (8 * b));
    }
    Put32(ip + 12, static_cast<uint32_t>(r));  // a new random source every packet
    Put32(ip + 16, 0xCB007100u | static_cast<uint32_t>((r >> 32) & 0xFF));
    Put16(ip + 4, static_cast<uint16_t>(r >> 40));
    Put16(tcp, static_cast<uint16_t>(1024 + (r2 & 0x7FFF)));
    bool random_port = static_cast<double>(r2 >> 11) * 0x1.0p-53 < share;
    Put16(tcp + 2, random_port ? static_cast<uint16_t>(r2 >> 16) : common[(r2 >> 16) & 7]);
    Put32(tcp + 4, static_cast<uint32_t>(r2 >> 32));
    Put16(tcp + 14, 1024);
    std::fwrite(rec, 1, sizeof rec, f);
  }
  return std::fclose(f) == 0 ? 0 : 1;
}
