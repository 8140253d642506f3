// Report charts rendered by headless Chromium: the PNG is not blank, carries the palette, Japanese
// glyphs are drawn (not tofu), and in the browser's own layout no tick or legend label overlaps
// another or leaves its chart. Skipped when chromium is not installed. Label: slow.
//
// TEITEN_CHART_PNG_DIR=dir keeps the sample page's HTML and PNG there (docs/img/charts-sample.png
// is made this way).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "report/chart.h"
#include "test_support.h"

namespace teiten::chart {
namespace {

using teiten::testing::HaveCommand;
using teiten::testing::Run;
using teiten::testing::TempDir;

constexpr int32_t kJul1 = 17713;  // 2018-07-01

// ---- A minimal PNG reader (8-bit RGB/RGBA, not interlaced: what Chromium writes) ----

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // 3 bytes per pixel
  uint32_t At(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return (uint32_t{rgb[i]} << 16) | (uint32_t{rgb[i + 1]} << 8) | rgb[i + 2];
  }
};

uint32_t Be32(const std::string& s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) | static_cast<uint8_t>(s[at + 3]);
}

bool DecodePng(const std::string& file, Image* img, std::string* err) {
  std::string data;
  if (FILE* f = std::fopen(file.c_str(), "rb")) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
    std::fclose(f);
  }
  if (data.size() < 8 || data.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) {
    *err = file + ": not a PNG";
    return false;
  }
  std::string idat;
  int depth = 0, colour = 0, interlace = 0;
  for (size_t at = 8; at + 12 <= data.size();) {
    const uint32_t len = Be32(data, at);
    const std::string type = data.substr(at + 4, 4);
    if (at + 12 + len > data.size()) break;
    if (type == "IHDR") {
      img->width = static_cast<int>(Be32(data, at + 8));
      img->height = static_cast<int>(Be32(data, at + 12));
      depth = static_cast<uint8_t>(data[at + 16]);
      colour = static_cast<uint8_t>(data[at + 17]);
      interlace = static_cast<uint8_t>(data[at + 20]);
    } else if (type == "IDAT") {
      idat.append(data, at + 8, len);
    }
    at += 12 + len;
  }
  if (depth != 8 || (colour != 2 && colour != 6) || interlace != 0) {
    *err = "unsupported PNG: depth " + std::to_string(depth) + " colour " + std::to_string(colour);
    return false;
  }
  const int bpp = colour == 6 ? 4 : 3;
  const size_t stride = static_cast<size_t>(img->width) * bpp;
  std::vector<uint8_t> raw((stride + 1) * img->height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) !=
          Z_OK ||
      raw_len != raw.size()) {
    *err = "PNG: bad image data";
    return false;
  }
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  img->rgb.resize(static_cast<size_t>(img->width) * img->height * 3);
  for (int y = 0; y < img->height; ++y) {
    const uint8_t* row = &raw[y * (stride + 1)];
    const uint8_t filter = row[0];
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= static_cast<size_t>(bpp) ? cur[i - bpp] : 0;
      const int b = prev[i];
      const int c = i >= static_cast<size_t>(bpp) ? prev[i - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          break;
      }
      cur[i] = static_cast<uint8_t>(row[1 + i] + pred);
    }
    for (int x = 0; x < img->width; ++x)
      for (int k = 0; k < 3; ++k)
        img->rgb[(static_cast<size_t>(y) * img->width + x) * 3 + k] = cur[x * bpp + k];
    std::swap(prev, cur);
  }
  return true;
}

// ---- Chromium ----

std::string Chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
    if (HaveCommand(name)) return name;
  return "";
}

std::string Flags() {
  return " --headless --no-sandbox --disable-gpu --disable-background-networking"
         " --hide-scrollbars --force-device-scale-factor=1 --disable-extensions"
         " --no-first-run --mute-audio";
}

bool Screenshot(const std::string& html, const std::string& dir, const std::string& name, int width,
                int height, Image* img, std::string* err) {
  const std::string page = dir + "/" + name + ".html", png = dir + "/" + name + ".png";
  std::ofstream(page) << html;
  bool ok = false;
  Run("timeout 120 " + Chromium() + Flags() + " --screenshot=" + png + " --window-size=" +
          std::to_string(width) + "," + std::to_string(height) + " file://" + page + " 2>/dev/null",
      &ok);
  if (!ok || !std::filesystem::exists(png)) {
    *err = "chromium did not write " + png;
    return false;
  }
  return DecodePng(png, img, err);
}

std::string Page(const std::vector<std::string>& svgs, const std::string& script = "") {
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><style>body{margin:0;padding:8px;"
      "background:#fff;width:736px}figure{margin:0 0 12px 0}</style></head><body>";
  for (const std::string& s : svgs) html += "<figure>" + s + "</figure>";
  html += script + "</body></html>";
  return html;
}

// The page height Page() needs: each figure's intrinsic height plus its margin, and the padding.
int PageHeight(const std::vector<std::string>& svgs) {
  double h = 16;
  for (const std::string& s : svgs) {
    const size_t at = s.find("height=\"");
    h += std::stod(s.substr(at + 8)) + 12 + 4;  // + the inline box's descender gap
  }
  return static_cast<int>(std::ceil(h));
}

// ---- The sample: the figures a quarterly and a monthly report carry ----

double Wave(int i, double base, double amp, double period, double phase) {
  return base + amp * std::sin((i + phase) * 2 * M_PI / period);
}

TimeChart Top5Ports(Lang lang) {
  TimeChart c;
  c.id = lang == Lang::kJa ? "fig1ja" : "fig1";
  c.title = lang == Lang::kJa ? "図1 宛先ポート別パケット観測数" : "Figure 1: packets by port";
  c.lang = lang;
  c.y_label = lang == Lang::kJa ? "パケット数（センサー平均）" : "packets per sensor";
  const char* names[] = {"23/TCP (telnet)", "445/TCP (microsoft-ds)", "80/TCP (http)",
                         "8080/TCP (http-alt)", "22/TCP (ssh)"};
  for (int i = 0; i < 92; ++i) c.days.push_back(kJul1 + i);
  for (int s = 0; s < 5; ++s) {
    Series ser{names[s], {}};
    for (int i = 0; i < 92; ++i) {
      double v = Wave(i, 1300 - 220 * s, 160 - 20 * s, 7 + s, s * 3.0);
      if (s == 2 && i >= 40 && i < 46) v += 1500 - 200 * std::abs(i - 43);  // a spike
      ser.values.push_back(v);
    }
    c.series.push_back(std::move(ser));
  }
  c.markers = {{kJul1 + 40, lang == Lang::kJa ? "注意喚起" : "advisory"}};
  return c;
}

TimeChart Regions(Lang lang) {
  TimeChart c;
  c.id = "fig2";
  c.lang = lang;
  c.title = lang == Lang::kJa ? "図2 送信元地域別パケット観測数" : "Figure 2: packets by region";
  c.y_label = lang == Lang::kJa ? "パケット数（センサー平均）" : "packets per sensor";
  const char* ja[] = {"中国", "米国", "ロシア", "日本", "ブラジル"};
  const char* en[] = {"China", "United States", "Russia", "Japan", "Brazil"};
  for (int i = 0; i < 92; ++i) c.days.push_back(kJul1 + i);
  for (int s = 0; s < 5; ++s) {
    Series ser{lang == Lang::kJa ? ja[s] : en[s], {}};
    for (int i = 0; i < 92; ++i) ser.values.push_back(Wave(i, 900 - 150 * s, 120, 9 + 2 * s, s));
    c.series.push_back(std::move(ser));
  }
  return c;
}

TimeChart PortByRegion(Lang lang) {
  TimeChart c;
  c.id = "fig3";
  c.lang = lang;
  c.title = lang == Lang::kJa ? "図3 53413/UDP 送信元地域別" : "Figure 3: 53413/UDP by region";
  c.y_label = lang == Lang::kJa ? "パケット数" : "packets";
  c.stacked = true;
  const char* ja[] = {"中国", "ベトナム", "インド", "台湾", "ブラジル", "その他"};
  const char* en[] = {"China", "Viet Nam", "India", "Taiwan", "Brazil", "Other"};
  for (int i = 0; i < 92; ++i) c.days.push_back(kJul1 + i);
  for (int s = 0; s < 6; ++s) {
    Series ser{lang == Lang::kJa ? ja[s] : en[s], {}, s == 5};
    for (int i = 0; i < 92; ++i) {
      double v = std::max(0.0, Wave(i, 40000 - 6000 * s, 9000, 13, s * 2.0));
      if (s == 0 && i >= 57 && i <= 58) v += 250000;
      ser.values.push_back(v);
    }
    c.series.push_back(std::move(ser));
  }
  return c;
}

TimeChart LongTerm(Lang lang) {
  TimeChart c;
  c.id = "fig4";
  c.lang = lang;
  c.title = lang == Lang::kJa ? "図4 9600/TCP の長期推移" : "Figure 4: 9600/TCP since 2015";
  c.y_label = lang == Lang::kJa ? "パケット数（対数）" : "packets (log scale)";
  c.scale = Scale::kLog;
  const int32_t start = 16709;  // 2015-10-01
  Series s{"9600/TCP", {}};
  for (int i = 0; i < 1096; ++i) {
    c.days.push_back(start + i);
    double v = 3 + 2 * std::sin(i / 17.0);
    if (i > 700) v *= std::pow(1.01, i - 700);
    if (i % 97 == 0) v = 0;  // gaps on a log scale
    s.values.push_back(v);
  }
  c.series.push_back(std::move(s));
  return c;
}

BarsAndLineChart Talot(Lang lang) {
  BarsAndLineChart c;
  c.id = "fig11";
  c.lang = lang;
  c.title = lang == Lang::kJa ? "図1.1 1観測点での1日あたりのアクセス数および発信元数"
                              : "Figure 1.1: accesses and sources per sensor per day";
  c.days = {13573, 13604, 13634, 13665, 13695, 13726};  // 2007-03 … 2007-08
  c.bars = {lang == Lang::kJa ? "アクセス数" : "accesses", {1012, 968, 930, 902, 880, 851}};
  c.line = {lang == Lang::kJa ? "発信元数" : "sources", {402, 380, 371, 350, 333, 323}};
  c.y_label = lang == Lang::kJa ? "アクセス数" : "accesses per sensor per day";
  c.y2_label = lang == Lang::kJa ? "発信元数" : "sources per sensor per day";
  return c;
}

ShareChart SixMonths(Lang lang) {
  ShareChart c;
  c.id = "fig311";
  c.lang = lang;
  c.title =
      lang == Lang::kJa ? "図3.1.1 宛先ポート別アクセス数の比率" : "Figure 3.1.1: shares by port";
  const int32_t months[] = {13573, 13604, 13634, 13665, 13695, 13726};
  for (int32_t m : months) c.row_labels.push_back(MonthLabel(m, lang, true));
  c.part_names = {"135/tcp", "445/tcp", "1026/udp", "139/tcp", "80/tcp", "1027/udp", "4899/tcp"};
  for (int r = 0; r < 6; ++r)
    c.shares.push_back({0.22 - 0.01 * r, 0.18, 0.09 + 0.01 * r, 0.07, 0.05, 0.04, 0.02});
  return c;
}

ShareChart Donut(Lang lang) {
  ShareChart c;
  c.id = "fig252";
  c.lang = lang;
  c.donut = true;
  c.title =
      lang == Lang::kJa ? "図2.5.2 発信元地域別アクセス数の比率" : "Figure 2.5.2: shares by region";
  c.part_names = lang == Lang::kJa
                     ? std::vector<std::string>{"日本", "中国", "米国", "韓国", "台湾"}
                     : std::vector<std::string>{"Japan", "China", "United States",
                                                "Korea, Republic of", "Taiwan"};
  c.shares = {{0.41, 0.19, 0.12, 0.08, 0.05}};
  c.center_text = "263,940";
  return c;
}

std::vector<std::string> SampleCharts(Lang lang) {
  TimeChart empty;
  empty.lang = lang;
  empty.title = "empty";
  empty.height = 140;
  return {Lines(Top5Ports(lang)),    Lines(Regions(lang)),
          Lines(PortByRegion(lang)), Lines(LongTerm(lang)),
          BarsAndLine(Talot(lang)),  Shares(SixMonths(lang)),
          Shares(Donut(lang)),       Lines(empty)};
}

class ChartRender : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Chromium().empty())
      GTEST_SKIP() << "chromium is not installed (Debian: apt-get install chromium); charts are "
                      "not rendered";
  }
  TempDir dir_;
};

int CountColour(const Image& img, uint32_t rgb, int tolerance = 2) {
  int n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint32_t p = img.At(x, y);
      bool near = true;
      for (int k = 0; k < 3; ++k) {
        const int a = (p >> (8 * k)) & 0xFF, b = (rgb >> (8 * k)) & 0xFF;
        near = near && std::abs(a - b) <= tolerance;
      }
      n += near;
    }
  return n;
}

TEST_F(ChartRender, SamplePageIsDrawnInThePalette) {
  std::vector<std::string> charts = SampleCharts(Lang::kJa);
  for (const std::string& s : SampleCharts(Lang::kEn)) charts.push_back(s);
  const std::string html = Page(charts);
  Image img;
  std::string err;
  ASSERT_TRUE(Screenshot(html, dir_.path(), "sample", 752, PageHeight(charts), &img, &err)) << err;
  if (const char* keep = std::getenv("TEITEN_CHART_PNG_DIR")) {
    // The Japanese figures alone: the sample in docs/img.
    const std::vector<std::string> ja = SampleCharts(Lang::kJa);
    Image sample;
    ASSERT_TRUE(Screenshot(Page({ja.begin(), ja.end() - 1}), keep, "charts-sample", 752,
                           PageHeight({ja.begin(), ja.end() - 1}), &sample, &err))
        << err;
    std::filesystem::copy_file(dir_.path() + "/sample.png", std::string(keep) + "/sample.png",
                               std::filesystem::copy_options::overwrite_existing);
  }
  ASSERT_EQ(img.width, 752);
  int ink = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) ink += img.At(x, y) != 0xFFFFFF;
  EXPECT_GT(ink, img.width * img.height / 20) << "the page is (nearly) blank";
  // Every Okabe–Ito colour the charts hand out, and the grey of "other", as solid pixels.
  for (uint32_t c :
       {0x0072B2u, 0xE69F00u, 0x009E73u, 0xD55E00u, 0xCC79A7u, 0x56B4E9u, 0xF0E442u, 0x999999u})
    EXPECT_GT(CountColour(img, c), 200) << fmt::format("colour #{:06X} missing", c);
}

// Two Japanese charts that differ only in which names (same lengths) the legend shows: with the
// glyphs drawn the renders differ; with tofu (every missing glyph the same box) they are identical.
// Checked both ways: with FONTCONFIG_FILE naming only DejaVu this test fails.
TEST_F(ChartRender, JapaneseGlyphsAreDrawnNotTofu) {
  TimeChart a = Regions(Lang::kJa);
  TimeChart b = a;
  // Same lengths as 中国, 米国, ロシア, 日本, ブラジル: as tofu, both rows of boxes would match.
  const char* other[] = {"台湾", "韓国", "スイス", "香港", "ベルギー"};
  for (size_t s = 0; s < b.series.size(); ++s) b.series[s].name = other[s];
  b.id = a.id;
  Image ia, ib;
  std::string err;
  ASSERT_TRUE(Screenshot(Page({Lines(a)}), dir_.path(), "kanji_a", 752, 420, &ia, &err)) << err;
  ASSERT_TRUE(Screenshot(Page({Lines(b)}), dir_.path(), "kanji_b", 752, 420, &ib, &err)) << err;
  ASSERT_EQ(ia.rgb.size(), ib.rgb.size());
  size_t differing = 0;
  for (size_t i = 0; i < ia.rgb.size(); i += 3)
    differing +=
        ia.rgb[i] != ib.rgb[i] || ia.rgb[i + 1] != ib.rgb[i + 1] || ia.rgb[i + 2] != ib.rgb[i + 2];
  EXPECT_GT(differing, 100u) << "the kanji render identically: tofu (install fonts-noto-cjk)";
}

// In the browser's own layout: tick labels, legend entries, row labels and marker labels do not
// overlap one another and stay inside their chart. Chromium runs the check (a script in this test
// page only — the charts carry none) and --dump-dom returns its verdict.
TEST_F(ChartRender, LabelsNeitherOverlapNorLeaveTheChart) {
  std::vector<std::string> charts = SampleCharts(Lang::kJa);
  for (const std::string& s : SampleCharts(Lang::kEn)) charts.push_back(s);
  // Crowded legends: many long names, mixed scripts.
  TimeChart crowded = Top5Ports(Lang::kJa);
  crowded.id = "crowded";
  for (int s = 0; s < 9; ++s)
    crowded.series.push_back({fmt::format("{}/UDP とても長い名前のサービス（説明つき） {}",
                                          1000 + s, std::string(s * 6, 'x')),
                              crowded.series[0].values});
  charts.push_back(Lines(crowded));
  const std::string script = R"(<pre id="verdict"></pre><script>
const problems = [];
document.querySelectorAll('svg').forEach((svg, si) => {
  const box = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll(
      '.tick-x, .tick-y, .tick-year, .legend text, .row-label, .markers text, .axis-title')];
  const rects = texts.map(t => t.getBoundingClientRect());
  rects.forEach((r, i) => {
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 ||
        r.bottom > box.bottom + 0.5)
      problems.push(`chart ${si}: "${texts[i].textContent}" leaves the chart`);
    for (let j = 0; j < i; ++j) {
      const q = rects[j];
      const ox = Math.min(r.right, q.right) - Math.max(r.left, q.left);
      const oy = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
      if (ox > 0.5 && oy > 2)
        problems.push(`chart ${si}: "${texts[i].textContent}" overlaps "${texts[j].textContent}"`);
    }
  });
});
document.getElementById('verdict').textContent =
    'VERDICT[' + (problems.length ? problems.join('\n') : 'ok') + ']VERDICT';
</script>)";
  const std::string page = dir_.path() + "/layout.html";
  std::ofstream(page) << Page(charts, script);
  bool ok = false;
  const std::string dom = teiten::testing::Run(
      "timeout 120 " + Chromium() + Flags() + " --window-size=752," +
          std::to_string(PageHeight(charts)) + " --dump-dom file://" + page + " 2>/dev/null",
      &ok);
  ASSERT_TRUE(ok) << "chromium --dump-dom failed";
  const size_t a = dom.find("VERDICT["), b = dom.find("]VERDICT");
  ASSERT_NE(a, std::string::npos) << "no verdict in the dumped DOM";
  EXPECT_EQ(dom.substr(a + 8, b - a - 8), "ok");
}

}  // namespace
}  // namespace teiten::chart
