// micrograd/arena.hpp: chunked storage for graph nodes (stable addresses, O(1) reuse).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace micrograd {

// What an arena holds, for tests and users watching memory.
struct ArenaStats {
    std::size_t live;       // nodes currently allocated
    std::size_t capacity;   // node slots obtained from the system so far
    std::size_t bytes;      // bytes obtained from the system so far
    std::size_t node_size;  // sizeof one node
};

// Arena<N> hands out uninitialised, suitably aligned slots for objects of type N.
//
// Slots live in fixed-size chunks that are never moved and never returned to the
// system while the arena exists, so a node's address is stable for its whole life and
// a stale pointer can only ever point at another node's slot, never at freed memory.
// Freed slots go on an intrusive free list and are handed out again before any new
// memory is touched: a loop that builds and drops one graph per step reaches a steady
// state after its first step and then allocates nothing from the system.
// New chunks are filled by bumping a pointer, so resident memory grows with use rather
// than by whole chunks.
//
// N must be trivially destructible: the arena never runs destructors.
// Not thread-safe: one arena is shared by all graphs of a scalar type, so callers
// serialise access (the Python module relies on the GIL).
template <class N>
class Arena {
public:
    static constexpr std::size_t chunk_slots = 4096;

    Arena() = default;
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    ~Arena() {
        for (Slot* chunk : chunks_) ::operator delete (chunk, std::align_val_t{alignof(Slot)});
    }

    // A slot for one N; construct into it with placement new.
    void* allocate() {
        Slot* slot = free_;
        if (slot != nullptr) {
            free_ = slot->next;
        } else {
            if (bump_ == end_) grow();
            slot = bump_++;
        }
        ++live_;
        return slot;
    }

    // Return a slot obtained from allocate(); the object in it must be dead.
    void deallocate(void* p) noexcept {
        push_free(static_cast<Slot*>(p));
        --live_;
    }

    // Makes sure the next `count` calls to allocate() will not need the system (so they
    // cannot throw): callers building many nodes at once reserve first, then build.
    void reserve(std::size_t count) {
        while (chunks_.size() * chunk_slots - live_ < count) {
            // Keep the old bump region: thread it onto the free list before replacing it.
            while (bump_ != end_) push_free(bump_++);
            grow();
        }
    }

    ArenaStats stats() const noexcept {
        const std::size_t capacity = chunks_.size() * chunk_slots;
        return {live_, capacity, capacity * sizeof(Slot), sizeof(N)};
    }

private:
    union Slot {
        Slot* next;
        alignas(N) unsigned char storage[sizeof(N)];
    };

    void push_free(Slot* slot) noexcept {
        slot->next = free_;
        free_ = slot;
    }

    void grow() {
        chunks_.reserve(chunks_.size() + 1);  // so push_back below cannot throw and leak
        auto* chunk = static_cast<Slot*>(
            ::operator new (chunk_slots * sizeof(Slot), std::align_val_t{alignof(Slot)}));
        chunks_.push_back(chunk);
        bump_ = chunk;
        end_ = chunk + chunk_slots;
    }

    std::vector<Slot*> chunks_;
    Slot* free_ = nullptr;
    Slot* bump_ = nullptr;
    Slot* end_ = nullptr;
    std::size_t live_ = 0;
};

}  // namespace micrograd
