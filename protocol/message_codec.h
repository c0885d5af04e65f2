// Framing of every Kafka message xdc produces: magic, CRC-32C of the payload, protobuf payload.
//
//   bytes 0..3  "XDC1"
//   bytes 4..7  CRC-32C of the payload, little endian
//   bytes 8..   serialised protobuf (HistoryMessage or ControlMessage)
//
// The checksum catches corruption that protobuf parsing alone would accept as a valid message.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message_lite.h"

namespace xdc {

inline constexpr std::string_view kFrameMagic = "XDC1";
inline constexpr size_t kFrameHeaderBytes = 8;

[[nodiscard]] std::string EncodeFrame(const google::protobuf::MessageLite& message);

// DATA_LOSS with the reason when the frame is short, has the wrong magic or checksum, or the
// payload does not parse as `message`.
[[nodiscard]] absl::Status DecodeFrame(std::string_view frame,
                                       google::protobuf::MessageLite& message);

}  // namespace xdc
