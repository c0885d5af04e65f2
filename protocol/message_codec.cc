#include "protocol/message_codec.h"

#include "absl/strings/str_format.h"
#include "protocol/checksum.h"

namespace xdc {

std::string EncodeFrame(const google::protobuf::MessageLite& message) {
  std::string payload = message.SerializeAsString();
  const uint32_t crc = Crc32c(payload);
  std::string frame(kFrameMagic);
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  frame += payload;
  return frame;
}

absl::Status DecodeFrame(std::string_view frame, google::protobuf::MessageLite& message) {
  if (frame.size() < kFrameHeaderBytes) {
    return absl::DataLossError(
        absl::StrFormat("message is %d bytes, shorter than the %d-byte frame header", frame.size(),
                        kFrameHeaderBytes));
  }
  if (frame.substr(0, 4) != kFrameMagic) {
    return absl::DataLossError("message does not start with the XDC1 frame magic");
  }
  uint32_t expected = 0;
  for (int i = 0; i < 4; ++i) {
    expected |= static_cast<uint32_t>(static_cast<unsigned char>(frame[4 + i])) << (8 * i);
  }
  const std::string_view payload = frame.substr(kFrameHeaderBytes);
  const uint32_t actual = Crc32c(payload);
  if (actual != expected) {
    return absl::DataLossError(absl::StrFormat(
        "message checksum mismatch (frame says %08x, payload has %08x)", expected, actual));
  }
  if (!message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError(
        absl::StrFormat("message payload does not parse as %s", message.GetTypeName()));
  }
  return absl::OkStatus();
}

}  // namespace xdc
