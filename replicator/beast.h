// The Boost.Asio and Boost.Beast headers xdc uses, in the one order that compiles here
// (Boost 1.74 Asio under g++ 12 in C++20 needs <utility> before it), and the short names the
// HTTP server and client use for them. Include only from .cc files.
#pragma once

// clang-format off
#include <utility>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on

namespace xdc {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
}  // namespace xdc
