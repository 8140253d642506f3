// The dashboard's pages, rendered on the server from the JSON API's own answers (web/api.h), so
// a page never shows a number the API would not give: overview, port, IP, sensors and login.
//
// Every string that came from a packet, the store, the config or the request is written through
// Escape() (text and attribute values alike); the pages hold no inline script or style (the
// server's Content-Security-Policy forbids both): charts are <div class="chart"> elements whose
// data-src names an API URL, drawn by /static/teiten.js with uPlot.
// The state of a page is its URL: period, port, address and lang (en or ja) are parameters.
#pragma once

#include <optional>
#include <string>

#include "web/api.h"

namespace teiten::web {

// &, <, >, " and ' as character references.
std::string Escape(const std::string& s);
// Percent-encoding of a query parameter's value (RFC 3986 unreserved characters kept).
std::string UrlEncode(const std::string& s);

struct PageRequest {
  const Snapshot* snap = nullptr;
  std::string path;  // "/", "/port", "/ip", "/sensors"
  Params params;
  Access access;
  std::optional<std::string> user;  // logged in as
  bool show_logout = false;         // a users file is in use
};

struct PageReply {
  int status = 200;
  std::string html;
};

// The page at req.path; 404 for none.
PageReply RenderPage(const PageRequest& req);
// The login form (an error message to show, or "").
PageReply RenderLogin(const std::string& lang, const std::string& next, const std::string& error,
                      int status);

}  // namespace teiten::web
