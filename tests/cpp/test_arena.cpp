// tests/cpp/test_arena.cpp: Arena<N> on its own: stable addresses, O(1) reuse, stats, alignment.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <micrograd/arena.hpp>
#include <micrograd/node.hpp>
#include <new>
#include <set>
#include <vector>

using micrograd::Arena;

namespace {

struct alignas(64) OverAligned {
    unsigned char bytes[40];
};

// What one slot must occupy: room for an N or a free-list pointer, at N's alignment.
template <class N>
constexpr std::size_t expected_slot_size() {
    const std::size_t size = std::max(sizeof(N), sizeof(void*));
    const std::size_t align = std::max(alignof(N), alignof(void*));
    return (size + align - 1) / align * align;
}

// Fills a slot with a pattern derived from its index, byte by byte (any N).
template <class N>
void stamp(void* p, std::size_t i) {
    auto* bytes = static_cast<unsigned char*>(p);
    for (std::size_t j = 0; j < sizeof(N); ++j) bytes[j] = static_cast<unsigned char>(i * 31 + j);
}

template <class N>
bool has_stamp(const void* p, std::size_t i) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    for (std::size_t j = 0; j < sizeof(N); ++j)
        if (bytes[j] != static_cast<unsigned char>(i * 31 + j)) return false;
    return true;
}

}  // namespace

#define ARENA_TYPES char, double, micrograd::Node<double>, micrograd::Node<float>, OverAligned

TEST_CASE_TEMPLATE("a fresh arena holds nothing and reports its node size", N, ARENA_TYPES) {
    Arena<N> arena;
    const auto s = arena.stats();
    CHECK(s.live == 0);
    CHECK(s.capacity == 0);
    CHECK(s.bytes == 0);
    CHECK(s.node_size == sizeof(N));
}

TEST_CASE_TEMPLATE("stats count live slots, capacity in whole chunks, and bytes", N, ARENA_TYPES) {
    constexpr std::size_t chunk = Arena<N>::chunk_slots;
    Arena<N> arena;
    std::vector<void*> slots{arena.allocate()};
    auto s = arena.stats();
    CHECK(s.live == 1);
    CHECK(s.capacity == chunk);
    CHECK(s.bytes == chunk * expected_slot_size<N>());
    CHECK(s.node_size == sizeof(N));

    while (slots.size() < chunk + 1) slots.push_back(arena.allocate());
    s = arena.stats();
    CHECK(s.live == chunk + 1);
    CHECK(s.capacity == 2 * chunk);
    CHECK(s.bytes == 2 * chunk * expected_slot_size<N>());

    for (void* p : slots) arena.deallocate(p);
    s = arena.stats();
    CHECK(s.live == 0);
    CHECK(s.capacity == 2 * chunk);  // memory is kept for reuse
}

TEST_CASE_TEMPLATE("slots are distinct, aligned, and keep their contents while the arena grows", N,
                   ARENA_TYPES) {
    constexpr std::size_t count = 3 * Arena<N>::chunk_slots + 17;
    Arena<N> arena;
    std::vector<void*> slots;
    std::size_t misaligned = 0;
    for (std::size_t i = 0; i < count; ++i) {
        void* p = arena.allocate();
        misaligned += reinterpret_cast<std::uintptr_t>(p) % alignof(N) != 0;
        stamp<N>(p, i);
        slots.push_back(p);
    }
    CHECK(misaligned == 0);
    CHECK(std::set<void*>(slots.begin(), slots.end()).size() == count);
    // Growing never moved or clobbered an earlier slot: every stamp is where it was written.
    std::size_t intact = 0;
    for (std::size_t i = 0; i < count; ++i) intact += has_stamp<N>(slots[i], i);
    CHECK(intact == count);
    for (void* p : slots) arena.deallocate(p);
}

TEST_CASE("an over-aligned node type gets slots on its alignment, each a whole multiple of it") {
    static_assert(alignof(OverAligned) == 64 && sizeof(OverAligned) == 64);
    Arena<OverAligned> arena;
    std::vector<void*> slots;
    for (std::size_t i = 0; i < 2 * Arena<OverAligned>::chunk_slots + 5; ++i)
        slots.push_back(arena.allocate());
    std::size_t misaligned = 0;
    for (void* p : slots) misaligned += reinterpret_cast<std::uintptr_t>(p) % 64 != 0;
    CHECK(misaligned == 0);
    CHECK(arena.stats().bytes == arena.stats().capacity * 64);
    // An object placed in a slot is usable (UBSan checks the alignment of this access).
    auto* obj = new (slots.back()) OverAligned{};
    obj->bytes[39] = 7;
    CHECK(obj->bytes[39] == 7);
    for (void* p : slots) arena.deallocate(p);
}

TEST_CASE_TEMPLATE("a freed slot is handed out again before the arena grows", N, ARENA_TYPES) {
    constexpr std::size_t chunk = Arena<N>::chunk_slots;
    Arena<N> arena;
    std::vector<void*> slots;
    for (std::size_t i = 0; i < chunk; ++i) slots.push_back(arena.allocate());  // one full chunk
    REQUIRE(arena.stats().capacity == chunk);

    SUBCASE("one slot: the same address comes back") {
        void* middle = slots[chunk / 2];
        arena.deallocate(middle);
        CHECK(arena.stats().live == chunk - 1);
        CHECK(arena.allocate() == middle);
        CHECK(arena.stats().capacity == chunk);
    }
    SUBCASE("several slots: all come back (most recently freed first), then the arena grows") {
        arena.deallocate(slots[1]);
        arena.deallocate(slots[7]);
        arena.deallocate(slots[3]);
        CHECK(arena.allocate() == slots[3]);
        CHECK(arena.allocate() == slots[7]);
        CHECK(arena.allocate() == slots[1]);
        CHECK(arena.stats().capacity == chunk);
        slots.push_back(arena.allocate());  // free list empty: a new chunk
        CHECK(arena.stats().capacity == 2 * chunk);
        CHECK(std::find(slots.begin(), slots.end() - 1, slots.back()) == slots.end() - 1);
    }
    for (void* p : slots) arena.deallocate(p);
}

TEST_CASE("many chunks: a build-and-drop loop reaches a steady state after its first round") {
    using N = micrograd::Node<double>;
    constexpr std::size_t count = 10 * Arena<N>::chunk_slots + 1;
    Arena<N> arena;
    std::set<void*> first_round;
    for (int round = 0; round < 3; ++round) {
        std::vector<void*> slots;
        for (std::size_t i = 0; i < count; ++i) slots.push_back(arena.allocate());
        CHECK(arena.stats().live == count);
        CHECK(arena.stats().capacity == 11 * Arena<N>::chunk_slots);
        const std::set<void*> addresses(slots.begin(), slots.end());
        CHECK(addresses.size() == count);
        if (round == 0) first_round = addresses;
        CHECK(addresses == first_round);  // later rounds reuse exactly the same slots
        for (void* p : slots) arena.deallocate(p);
        CHECK(arena.stats().live == 0);
    }
}
