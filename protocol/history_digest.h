// Per-workflow digest used to compare clusters: two clusters hold the same history for a run
// exactly when their digests of it are equal (up to hash collisions).
#pragma once

#include <string>

#include "google/protobuf/repeated_field.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// FNV-1a 64 over the current branch's version history and every field of its events, in a
// fixed byte layout (not protobuf serialisation, which is not canonical). 16 hex digits.
[[nodiscard]] std::string HistoryDigest(
    const VersionHistory& branch, const google::protobuf::RepeatedPtrField<HistoryEvent>& events);

}  // namespace xdc
