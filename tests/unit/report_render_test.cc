// Reports rendered by headless Chromium: the page is not blank and shows the charts' colours,
// and PDF prints. Slow (a browser per case), so a binary of its own.
#include "report/report.h"
#include "report_test_support.h"

namespace teiten::report {
namespace {

TEST_F(ScenarioReport, RendersInChromium) {
  std::string chromium = FindChromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium not installed";
  std::string html = dir_.path() + "/r.html", png = dir_.path() + "/r.png";
  bool ok = false;
  std::string log = Cli("report --period " + SmallPeriod() + " --lang ja -o " + Quote(html), &ok);
  ASSERT_TRUE(ok) << log;
  std::string cmd = Quote(chromium) +
                    " --headless --no-sandbox --disable-gpu --disable-background-networking "
                    "--hide-scrollbars --user-data-dir=" +
                    Quote(dir_.path() + "/profile") +
                    " --window-size=1000,2600 --screenshot=" + Quote(png) + " file://" + html +
                    " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(fs::exists(png));
  // Pixel statistics with PIL: share of non-white pixels, and the Okabe–Ito blue and orange.
  std::string py =
      "from PIL import Image; im = Image.open('" + png +
      "').convert('RGB'); px = list(im.getdata()); n = len(px); "
      "ink = sum(1 for p in px if sum(p) < 600) / n; "
      "near = lambda c: sum(1 for p in px if all(abs(p[i] - c[i]) < 24 for i in range(3))); "
      "print(ink, near((0, 114, 178)), near((230, 159, 0)))";
  std::string stats = testing::Run(Python() + " -c " + Quote(py), &ok);
  ASSERT_TRUE(ok) << stats;
  double ink = 0;
  long blue = 0, orange = 0;
  std::stringstream(stats) >> ink >> blue >> orange;
  EXPECT_GT(ink, 0.02) << "the page looks blank: " << stats;
  EXPECT_GT(blue + orange, 200) << "no chart colours: " << stats;

  std::string pdf = dir_.path() + "/r.pdf";
  log = Cli("report --period " + SmallPeriod() + " --lang ja --format pdf -o " + Quote(pdf), &ok);
  ASSERT_TRUE(ok) << log;
  std::string bytes = Slurp(pdf);
  ASSERT_EQ(bytes.rfind("%PDF-", 0), 0u);
  EXPECT_GE(bytes.size(), 20000u);
}

}  // namespace
}  // namespace teiten::report
