// micrograd/arena.hpp: chunked storage for graph nodes (stable addresses, O(1) reuse).
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define MICROGRAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MICROGRAD_ASAN 1
#endif
#endif
#ifdef MICROGRAD_ASAN
#include <sanitizer/asan_interface.h>
#endif

// A function that inlines everything it calls, where the compiler can be told so: a
// replay's sweeps (graph.hpp: the op table's dispatch included) and a layer's forward pass
// (mlp.hpp), whose calls GCC otherwise leaves out of line.
#if defined(__GNUC__) || defined(__clang__)
#define MICROGRAD_FLATTEN __attribute__((flatten))
#else
#define MICROGRAD_FLATTEN
#endif

namespace micrograd {

namespace detail {
// Memory kept for reuse (free slots and blocks) is marked unusable under AddressSanitizer,
// so that a read of a freed node or block is reported as a use after free, as it would be
// without the free lists. No-ops otherwise.
inline void poison(void* p, std::size_t bytes) noexcept {
#ifdef MICROGRAD_ASAN
    ASAN_POISON_MEMORY_REGION(p, bytes);
#else
    static_cast<void>(p), static_cast<void>(bytes);
#endif
}
inline void unpoison(void* p, std::size_t bytes) noexcept {
#ifdef MICROGRAD_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#else
    static_cast<void>(p), static_cast<void>(bytes);
#endif
}
// Makes room for one more element of v, growing it geometrically (reserve(size() + 1)
// alone would copy the whole vector at every call), so that a push_back that follows cannot
// throw.
template <class Vector>
void reserve_one_more(Vector& v) {
    if (v.size() == v.capacity()) v.reserve(2 * v.size() + 1);
}
}  // namespace detail

// What an arena holds, for tests and users watching memory.
struct ArenaStats {
    std::size_t live;       // nodes currently allocated (arena_stats() adds fused neurons')
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
        for (Slot* chunk : chunks_) {
            detail::unpoison(chunk, chunk_slots * sizeof(Slot));
            ::operator delete (chunk, std::align_val_t{alignof(Slot)});
        }
    }

    // A slot for one N; construct into it with placement new.
    void* allocate() {
        Slot* slot = free_;
        if (slot != nullptr) {
            detail::unpoison(slot, sizeof(Slot));
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
        detail::poison(slot, sizeof(Slot));
    }

    void grow() {
        detail::reserve_one_more(chunks_);  // so that push_back below cannot throw and leak
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

// Variable-size blocks (fused neurons, rows), aligned to 64 bytes (a cache line) and
// recycled by size class: free lists in 64-byte steps up to 4 KiB, so that a training loop
// that builds and drops the same neurons every step reaches a steady state and stops
// calling the system allocator. New blocks are cut from 64 KiB slabs, in order.
// Larger blocks go straight to and from operator new. Like Arena, it keeps what it got
// until it is destroyed, and is not thread-safe.
class BlockPool {
public:
    static constexpr std::size_t step = 64;
    static constexpr std::size_t classes = 64;  // class c holds blocks of c * step bytes
    static constexpr std::size_t slab_bytes = 64 * 1024;

    BlockPool() = default;
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;
    // Frees every slab, whatever is in use (as Arena frees its chunks).
    ~BlockPool() {
        for (unsigned char* slab : slabs_) {
            detail::unpoison(slab, slab_bytes);
            ::operator delete(slab, align);
        }
    }

    void* allocate(std::size_t bytes) {
        const std::size_t c = size_class(bytes);
        if (c >= classes) return ::operator new(bytes, align);
        const std::size_t size = c * step;
        if (Block* b = free_[c]) {
            detail::unpoison(b, size);
            free_[c] = b->next;
            return b;
        }
        if (static_cast<std::size_t>(end_ - bump_) < size) {  // the rest stays unused
            detail::reserve_one_more(slabs_);  // so that push_back below cannot throw and leak
            bump_ = static_cast<unsigned char*>(::operator new(slab_bytes, align));
            slabs_.push_back(bump_);
            end_ = bump_ + slab_bytes;
            detail::poison(bump_, slab_bytes);
        }
        void* p = bump_;
        bump_ += size;
        detail::unpoison(p, size);
        return p;
    }

    // `bytes` as given to allocate().
    void deallocate(void* p, std::size_t bytes) noexcept {
        const std::size_t c = size_class(bytes);
        if (c >= classes) return ::operator delete(p, align);
        free_[c] = new (p) Block{free_[c]};
        detail::poison(p, c * step);
    }

private:
    static constexpr std::align_val_t align{step};
    struct Block {
        Block* next;
    };
    static std::size_t size_class(std::size_t bytes) noexcept {
        return (std::max(bytes, sizeof(Block)) + step - 1) / step;
    }

    Block* free_[classes] = {};
    // Every slab: what the destructor frees, and what keeps the blocks of the free lists,
    // poisoned links and all, visible to LeakSanitizer.
    std::vector<unsigned char*> slabs_;
    unsigned char* bump_ = nullptr;  // the unused rest of the newest slab
    unsigned char* end_ = nullptr;
};

}  // namespace micrograd
