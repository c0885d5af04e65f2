// Text that is safe to put into JSON whatever bytes it came from: JsonQuote for the few places
// that write JSON by hand (log lines, chaos reports, the HTTP server's own errors), and
// QuotableText for messages that go into a protobuf string field (API errors, api_json.cc).
//
// Both keep valid UTF-8 as it is and write each byte of an invalid UTF-8 sequence as the four
// characters \xHH (a hex quote, so a reader sees which byte was wrong; the raw byte never reaches
// the output). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace xdc {

// The length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 if the bytes there are not one.
inline size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;  // the range of the second byte, narrowed for the lead byte
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, an overlong lead (c0, c1) or f5..ff
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return length;
}

// Whether `text` is well-formed UTF-8.
inline bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// `text` in double quotes, with '"', '\\' and control characters escaped, and each byte of an
// invalid UTF-8 sequence written as \xHH (in JSON: "\\xHH").
inline std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      absl::StrAppendFormat(&out, "\\\\x%02x", static_cast<unsigned char>(c));
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    ++i;
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

// `text` as printable, well-formed UTF-8 of at most about `max_bytes` bytes, for a message that
// may quote what a client sent (an error message: ErrorFor in api_json.cc). Each byte of an
// invalid UTF-8 sequence, each control character but '\n' and '\t' (C0, DEL and C1, which
// terminals act on) is written as \xHH, per byte of its encoding. Past `max_bytes` of output, the
// rest is cut at a character boundary and replaced by " ... (N more bytes)", N counting `text`.
inline std::string QuotableText(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t length = Utf8SequenceLength(text, i);
    const auto lead = static_cast<unsigned char>(text[i]);
    const bool control =
        (length == 1 && (lead < 0x20 || lead == 0x7f) && lead != '\n' && lead != '\t') ||
        (length == 2 && lead == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0);
    const size_t consumed = length == 0 ? 1 : length;
    std::string piece;
    if (length == 0 || control) {
      for (size_t k = i; k < i + consumed; ++k) {
        absl::StrAppendFormat(&piece, "\\x%02x", static_cast<unsigned char>(text[k]));
      }
    } else {
      piece.assign(text.substr(i, length));
    }
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += consumed;
  }
  if (i < text.size()) absl::StrAppendFormat(&out, " ... (%d more bytes)", text.size() - i);
  return out;
}

}  // namespace xdc
