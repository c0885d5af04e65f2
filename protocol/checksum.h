// CRC-32C (Castagnoli), used to detect corrupt Kafka messages before they are parsed.
#pragma once

#include <cstdint>
#include <string_view>

namespace xdc {

[[nodiscard]] uint32_t Crc32c(std::string_view bytes);

}  // namespace xdc
