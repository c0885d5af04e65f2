// The Boost.Asio and Boost.Beast headers xdc uses, in the one order that compiles here:
// Boost 1.74 Asio under g++ 12 in C++20 needs <utility> before it.
#pragma once

// clang-format off
#include <utility>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
