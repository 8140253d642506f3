// WriteReport: HTML, Markdown (with its figures as SVG files) or PDF through headless Chromium.
// Every file is written to a temporary name and renamed, so a failed run leaves no half report.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "report/report.h"

namespace teiten::report {
namespace {

namespace fs = std::filesystem;

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError(tmp + ": cannot write");
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return IoError(tmp + ": write failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return IoError(fmt::format("{}: cannot rename into place: {}", path, ec.message()));
  return OkStatus();
}

bool Executable(const std::string& p) {
  return !p.empty() && access(p.c_str(), X_OK) == 0;
}

// Runs argv without a shell; returns the exit status, or -1.
int RunProgram(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // Chromium's chatter is not the user's business unless it fails.
    FILE* devnull = std::fopen("/dev/null", "w");
    if (devnull) {
      dup2(fileno(devnull), 1);
      dup2(fileno(devnull), 2);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

std::string FindChromium() {
  if (const char* e = std::getenv("TEITEN_CHROMIUM")) {
    return Executable(e) ? e : "";
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string cand = dirs.substr(start, end - start) + "/" + name;
      if (Executable(cand)) return cand;
      start = end + 1;
    }
  }
  return "";
}

Status WriteReportJson(const ReportData& data, const std::string& path) {
  return WriteFileAtomically(path, ReportJson(data));
}

Status WriteReport(const Document& doc, ReportFormat format, const std::string& path) {
  switch (format) {
    case ReportFormat::kJson:
      return InvalidArgument("JSON is written from the report's data: WriteReportJson");
    case ReportFormat::kHtml:
      return WriteFileAtomically(path, RenderHtml(doc));
    case ReportFormat::kMarkdown: {
      fs::path p(path);
      std::string stem = p.stem().string();
      std::vector<std::pair<std::string, std::string>> figures;
      std::string md = RenderMarkdown(doc, stem, &figures);
      fs::path dir = p.parent_path();
      for (const auto& [name, svg] : figures) {
        RETURN_IF_ERROR(WriteFileAtomically((dir / name).string(),
                                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg));
      }
      return WriteFileAtomically(path, md);
    }
    case ReportFormat::kPdf: {
      std::string chromium = FindChromium();
      if (chromium.empty()) {
        return NotFound(
            "PDF needs headless Chromium, which was not found (install it with "
            "`apt-get install chromium fonts-noto-cjk`, or set TEITEN_CHROMIUM); "
            "--format html writes the same report for a browser to print");
      }
      std::string html = path + ".src.html";
      RETURN_IF_ERROR(WriteFileAtomically(html, RenderHtml(doc)));
      std::string tmp = path + ".tmp";
      std::string profile = fs::temp_directory_path() /
                            fmt::format("teiten-chromium-{}", static_cast<long>(getpid()));
      int rc = RunProgram({chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", "--no-first-run",
                           "--user-data-dir=" + profile, "--no-pdf-header-footer",
                           "--print-to-pdf=" + tmp, "file://" + fs::absolute(html).string()});
      std::error_code ec;
      fs::remove(html, ec);
      fs::remove_all(profile, ec);
      if (rc != 0 || !fs::exists(tmp) || fs::file_size(tmp, ec) < 100) {
        fs::remove(tmp, ec);
        return Internal(
            fmt::format("{} failed to print the report to PDF (exit {})", chromium, rc));
      }
      fs::rename(tmp, path, ec);
      if (ec) return IoError(fmt::format("{}: cannot rename into place: {}", path, ec.message()));
      return OkStatus();
    }
  }
  return InvalidArgument("unknown report format");
}

}  // namespace teiten::report
