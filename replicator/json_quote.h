// A JSON string literal for any text, for the few places that write JSON by hand (log lines,
// chaos reports) instead of through a protobuf message.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace xdc {

// `text` in double quotes, with '"', '\\' and control characters escaped.
inline std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace xdc
