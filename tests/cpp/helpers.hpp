// tests/cpp/helpers.hpp: small helpers shared by the C++ tests.
#pragma once

#include <cstddef>
#include <micrograd.hpp>

// Nodes alive in the arena of T.
template <class T>
std::size_t live() {
    return micrograd::arena_stats<T>().live;
}
