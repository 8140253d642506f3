// The reference every ingest figure is compared with: a bare libpcap read loop that touches each
// packet's first byte and nothing else. Prints packets, seconds and packets per second.
//   teiten-pcap-loop FILE
#include <pcap/pcap.h>

#include <chrono>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: teiten-pcap-loop FILE\n");
    return 2;
  }
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(argv[1], err);
  if (!p) {
    std::fprintf(stderr, "teiten-pcap-loop: %s\n", err);
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  pcap_pkthdr* h;
  const u_char* d;
  unsigned long long n = 0, sum = 0;
  int r;
  while ((r = pcap_next_ex(p, &h, &d)) == 1) {
    ++n;
    sum += d[0];
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r == PCAP_ERROR) std::fprintf(stderr, "teiten-pcap-loop: %s\n", pcap_geterr(p));
  std::printf("packets %llu seconds %.3f pps %.0f (checksum %llu)\n", n, s, n / s, sum);
  pcap_close(p);
  return r == PCAP_ERROR ? 1 : 0;
}
