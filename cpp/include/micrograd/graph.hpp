// micrograd/graph.hpp: a captured graph as a flat program, replayed forward and backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fused.hpp"

// Before a loop whose iterations are independent, though its pointers could alias as far
// as the compiler knows: it may vectorize it.
#if defined(__clang__)
#define MICROGRAD_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define MICROGRAD_IVDEP _Pragma("GCC ivdep")
#elif defined(_MSC_VER)
#define MICROGRAD_IVDEP __pragma(loop(ivdep))
#else
#define MICROGRAD_IVDEP
#endif

// On x86-64 with GCC or Clang, a replay's sweeps are compiled twice, for the baseline
// (SSE2: two doubles per vector) and for AVX2 (four), and chosen at run time by what the
// CPU supports: the same IEEE operations in the same order either way (no FMA:
// -ffp-contract=off), so the same bits. The environment variable MICROGRAD_NO_AVX2 (set
// to anything, before the first replay) keeps to the baseline: the tests compare the two.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define MICROGRAD_AVX2 __attribute__((target("avx2")))
#endif

namespace micrograd {
namespace detail {

#ifdef MICROGRAD_AVX2
inline bool has_avx2() noexcept {
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0 && std::getenv("MICROGRAD_NO_AVX2") == nullptr;
    }();
    return has;
}
#endif

}  // namespace detail

// Graph<T>: the graph reachable from a root, recorded once as a program over arrays (CppAD's
// ADFun, tinygrad's TinyJit) and replayed:
//
//     Value<double> loss = ...;          // built once, from parameters and inputs (leaves)
//     Graph<double> g(loss, {x0, x1});  // x0, x1: leaves that set_inputs() writes
//     for (...) {
//         g.set_inputs(batch, 2);
//         g.forward();                   // every interior node's data, from the leaves' data
//         g.backward();                  // as loss.backward() on a freshly built graph
//         ...update the parameters' data from their grads...
//     }
//
// Every node of the graph gets a slot: the leaves first, then the interior nodes in a
// topological order, one program entry each (struct of arrays: op code, input slots, and
// for a fused neuron its weights' and inputs' slots). The program keeps its own copy of
// the data and grads by slot, which its loops read as arrays (vectorized where neurons
// allow), and writes each result to its node as it goes, so every handle shows it.
// forward() reads every leaf's data (parameters, inputs and constants are read live) and
// computes the entries in order, each interior node's data and a grad of 0 written as the
// entry is done. backward() sweeps the entries in reverse with each op's partials from
// ops.hpp; an entry's grad is final when the sweep reaches it (its consumers come after
// it), and goes to its node then, the leaves' at the end: leaves accumulate, interior
// nodes start from 0 and the root from 1, as in backward() on a freshly built graph.
// (Working on the nodes directly instead, with no copy, measured slower: bench/README.md.)
// Stopped by an interrupt (Context::interrupted), a replay leaves the nodes it reached
// updated and the others as they were, as backward() does.
//
// Bit for bit the eager result: each entry computes what its node's op computes, and the
// reverse sweep is backward()'s own order (detail::consumers_first), so every grad
// receives the same contributions in the same order. Fused neurons are one entry each;
// one expand()ed since capture (its `_prev` was read) makes the next replay capture the
// graph again (the expanded nodes are micrograd's, with the same values).
//
// A fused neuron's inner state (its products and bias, which expand() reads; its inner
// grads, into which an eager backward() accumulates) is not written by a replay: the
// program keeps the data and grads it follows from, and names itself Context::stale;
// expand(), backward() and the next replay of another program first call
// detail::settle(), which writes it to the blocks (write_stale()). So a replay touches a
// neuron's node only to write its data and grad, and its sweeps keep to the arrays.
//
// What a replay cannot see: the structure is the one captured. Branches taken on data
// while the graph was built, numbers computed from data (now constant leaves), a batch
// or model of another size: build and capture again.
// Thrown by Graph's constructor for a graph holding a custom node (ops.hpp: Custom1,
// Custom2): its value and backward are computed outside the core, which cannot replay
// them. `node` is the first one found.
struct Unreplayable : std::invalid_argument {
    explicit Unreplayable(const void* n)
        : std::invalid_argument(
              "Graph: the graph holds a custom node (its data and backward "
              "come from outside the core), which cannot be replayed"),
          node(n) {}
    const void* node;
};

template <class T>
class Graph {
public:
    using scalar_type = T;

    // Captures the graph of root; `inputs` are leaves of it that set_inputs() writes, in
    // order (std::invalid_argument naming the position of one that is not).
    explicit Graph(Value<T> root, std::vector<Value<T>> inputs = {})
        : root_(std::move(root)), inputs_(std::move(inputs)), p_(own(capture(root_, inputs_))) {}

    std::size_t size() const noexcept { return p_->nodes.size(); }
    const Value<T>& root() const noexcept { return root_; }
    const std::vector<Value<T>>& inputs() const noexcept { return inputs_; }

    // Writes n values into the inputs' data; throws std::invalid_argument (changing
    // nothing) unless n is the number of inputs.
    void set_inputs(const T* values, std::size_t n) {
        if (n != inputs_.size())
            throw std::invalid_argument("set_inputs: got " + std::to_string(n) +
                                        " values for a graph with " +
                                        std::to_string(inputs_.size()) + " inputs");
        for (std::size_t j = 0; j < inputs_.size(); ++j) inputs_[j].set_data(values[j]);
    }

    // Recomputes every interior node's data from the leaves' current data, and sets its
    // grad to 0 (as a freshly built graph has it). Leaves are not touched.
    void forward() {
        auto& ctx = detail::context<T>();
        refresh(ctx);
        const detail::Walking<T> walking(ctx, "Graph.forward()");
        Program& p = *p_;
        if (ctx.stale != &p) detail::settle(ctx);  // another program's
        p.forwarded = true;
        p.backwarded = false;
        leave_stale(ctx, p);
        T* data = p.data.data();
        for (std::size_t s = 0; s < p.leaves; ++s) data[s] = p.nodes[s]->data;
        detail::Poll<T> poll(ctx);
        const std::size_t entries = p.op.size();
        for (std::size_t i = 0; i < entries;) {
            const std::size_t from = i;
            i = forward_chunk(p, i, std::min(entries, i + detail::poll_interval), data);
            poll(static_cast<unsigned>(i - from));
        }
    }

    // micrograd's backward() from the root, over the values of the last forward() (or of
    // the capture).
    void backward() {
        auto& ctx = detail::context<T>();
        refresh(ctx);
        const detail::Walking<T> walking(ctx, "Graph.backward()");
        Program& p = *p_;
        if (ctx.stale != &p) detail::settle(ctx);  // another program's
        p.backwarded = true;
        leave_stale(ctx, p);
        const T* data = p.data.data();
        T* grad = p.grad.data();
        for (std::size_t s = 0; s < p.leaves; ++s) grad[s] = p.nodes[s]->grad;
        std::fill(grad + p.leaves, grad + p.nodes.size(), T(0));
        grad[p.nodes.size() - 1] = T(1);  // the root: the last slot
        detail::Poll<T> poll(ctx);
        for (std::size_t i = p.op.size(); i > 0;) {
            const std::size_t from = i;
            i = backward_chunk(p, i, i > detail::poll_interval ? i - detail::poll_interval : 0,
                               data, grad);
            poll(static_cast<unsigned>(from - i));
        }
        for (std::size_t s = 0; s < p.leaves; ++s) p.nodes[s]->grad = grad[s];
    }

    // Recomputes every interior node from its inputs' data in the nodes, one node at a
    // time as the eager ops do, and returns the largest difference from the data the
    // nodes hold (0 after a replay; infinity where only one of the two is nan). Changes
    // nothing.
    T check() const {
        const Program& p = *p_;
        T worst = T(0);
        for (std::size_t s = p.leaves; s < p.nodes.size(); ++s) {
            Node<T>& n = *p.nodes[s];
            T want;
            if (is_fused(n.op)) {
                Fused<T>& f = detail::fused_part(n);
                T sum = n.a->data;
                for (std::size_t k = 0; k < f.n; ++k)
                    sum = sum + f.w->nodes()[k]->data * f.x->nodes()[k]->data;
                want = n.op == Op::neuron_relu ? op::Relu::forward(sum, T(0)) : sum;
            } else {
                const T second = n.op == Op::pow_const     ? n.k
                                 : detail::is_binary(n.op) ? n.b->data
                                                           : T(0);
                want = detail::forward(n.op, n.a->data, second);
            }
            T diff = want == n.data || (std::isnan(want) && std::isnan(n.data))
                         ? T(0)
                         : std::fabs(want - n.data);
            if (std::isnan(diff)) diff = std::numeric_limits<T>::infinity();
            worst = std::max(worst, diff);
        }
        return worst;
    }

private:
    // The recorded program. Slots: leaves in [0, leaves), then entry i in slot leaves + i.
    // Nodes by slot, holding one reference each, released root first: each node dies
    // there (if no one else holds it) before its inputs.
    struct Nodes : std::vector<Node<T>*> {
        Nodes() = default;
        Nodes(Nodes&&) noexcept = default;  // leaves the other empty
        Nodes& operator=(Nodes&& other) noexcept {
            this->swap(other);  // the other releases ours
            return *this;
        }
        ~Nodes() {
            for (std::size_t s = this->size(); s-- > 0;) detail::release((*this)[s]);
        }
    };

    struct Program {
        Nodes nodes;
        std::size_t leaves = 0;
        std::vector<Op> op;            // by entry
        std::vector<std::uint32_t> a;  // the first input's slot (a fused neuron's bias)
        // The second input's slot (binary ops), the index of the exponent in `constants`
        // (pow_const), or of a fused neuron's operands: n, n weight slots, n input slots.
        std::vector<std::uint32_t> b;
        std::vector<T> constants;
        std::vector<std::uint32_t> operands;
        std::vector<T> data, grad;  // by slot
        // By entry: the size of the group of neurons it starts, or the end of one (group()).
        std::vector<std::uint8_t> lanes;
        // By entry, for the first of a group: where in `packed` its weights are, transposed
        // (the k-th weight of each of its G neurons together), and pack_first if it is the
        // first group of those weights in the program, which copies them there.
        std::vector<std::uint32_t> pack;
        std::vector<T> packed;
        std::uint64_t expansions = 0;  // Context::expansions when captured
        bool has_fused = false;
        // What write_stale() writes (the inner state of the eager path after the same calls):
        // the bias and products of the last forward(), if one ran since capture or since it
        // last wrote them; the uniform inner grads of the last backward(), if one ran after
        // it, else none.
        bool forwarded = false, backwarded = false;
    };

    // The program, where Context::stale can point: at a fixed address, and settled before
    // it goes.
    struct Drop {
        void operator()(Program* p) const noexcept {
            auto& ctx = detail::context<T>();
            if (ctx.stale == p) detail::settle(ctx);
            delete p;
        }
    };
    using Owned = std::unique_ptr<Program, Drop>;
    static Owned own(Program p) { return Owned(new Program(std::move(p))); }

    // Calls f(input) for each input of an interior node, in order (a fused neuron: bias,
    // weights, then inputs).
    template <class F>
    static void for_each_input(Node<T>& n, F f) {
        if (is_fused(n.op)) {
            Fused<T>& fu = detail::fused_part(n);
            f(n.a);
            for (std::size_t k = 0; k < fu.n; ++k) f(fu.w->nodes()[k]);
            for (std::size_t k = 0; k < fu.n; ++k) f(fu.x->nodes()[k]);
            return;
        }
        f(n.a);
        if (detail::is_binary(n.op)) f(n.b);
    }

    // Records the graph of root. Nodes' `pending` holds slot + 1 while it runs (0 again
    // when it returns or throws).
    static Program capture(const Value<T>& root, const std::vector<Value<T>>& inputs) {
        auto& ctx = detail::context<T>();
        const detail::Walking<T> walking(ctx, "Graph()");
        Program p;
        p.expansions = ctx.expansions;
        std::vector<Node<T>*> interior;  // backward()'s order: root first
        if (root.op() != Op::leaf)
            detail::consumers_first(ctx, root.node(),
                                    [&interior](Node<T>& n) { interior.push_back(&n); });
        Nodes& nodes = p.nodes;
        auto mark = [&nodes](Node<T>* n) {
            nodes.push_back(n);
            n->pending = static_cast<std::uint32_t>(nodes.size());
        };
        try {
            nodes.reserve(interior.size() + 1);
            if (root.op() == Op::leaf) mark(root.node());
            for (auto it = interior.rbegin(); it != interior.rend(); ++it)
                for_each_input(**it, [&mark](Node<T>* in) {
                    if (in->op == Op::leaf && in->pending == 0) mark(in);
                });
            p.leaves = nodes.size();
            if (p.leaves + interior.size() >= std::numeric_limits<std::uint32_t>::max())
                throw std::length_error("Graph: a graph can have at most 2**32 - 2 nodes");
            for (auto it = interior.rbegin(); it != interior.rend(); ++it) mark(*it);
            record(p, interior.size());
            check_inputs(inputs);
        } catch (...) {
            for (Node<T>* n : nodes) n->pending = 0;
            nodes.clear();  // no references taken yet
            throw;
        }
        for (Node<T>* n : nodes) {
            n->pending = 0;
            detail::retain(n);
        }
        p.data.resize(nodes.size());
        p.grad.resize(nodes.size());
        for (std::size_t s = 0; s < nodes.size(); ++s) p.data[s] = nodes[s]->data;
        return p;
    }

    // Fills the entries of p (whose nodes have their slots in `pending`).
    static void record(Program& p, std::size_t entries) {
        auto slot = [](const Node<T>* n) { return n->pending - 1; };
        p.op.reserve(entries);
        p.a.reserve(entries);
        p.b.reserve(entries);
        for (std::size_t i = 0; i < entries; ++i) {
            Node<T>& n = *p.nodes[p.leaves + i];
            if (is_custom(n.op)) throw Unreplayable(&n);
            p.op.push_back(n.op);
            p.a.push_back(slot(n.a));
            if (is_fused(n.op)) {
                p.has_fused = true;
                const Fused<T>& f = detail::fused_part(n);
                p.b.push_back(static_cast<std::uint32_t>(p.operands.size()));
                Node<T>** w = f.w->nodes();
                Node<T>** x = f.x->nodes();
                // Weights in consecutive slots, inputs too, the two runs and the bias apart
                // (so are nn's neurons): each slot then gets one contribution per neuron.
                const std::size_t w0 = slot(w[0]), x0 = slot(x[0]), bias = slot(n.a);
                bool runs = (w0 + f.n <= x0 || x0 + f.n <= w0) &&
                            (bias < std::min(w0, x0) || bias >= std::max(w0, x0) + f.n ||
                             (bias >= w0 + f.n && bias < x0) || (bias >= x0 + f.n && bias < w0));
                for (std::size_t k = 1; k < f.n && runs; ++k)
                    runs = slot(w[k]) == w0 + k && slot(x[k]) == x0 + k;
                p.operands.push_back(static_cast<std::uint32_t>(f.n) | (runs ? in_runs : 0));
                const std::size_t listed = runs ? 1 : f.n;
                for (std::size_t k = 0; k < listed; ++k) p.operands.push_back(slot(w[k]));
                for (std::size_t k = 0; k < listed; ++k) p.operands.push_back(slot(x[k]));
            } else if (n.op == Op::pow_const) {
                p.b.push_back(static_cast<std::uint32_t>(p.constants.size()));
                p.constants.push_back(n.k);
            } else {
                p.b.push_back(detail::is_binary(n.op) ? slot(n.b) : 0);
            }
        }
        group(p);
    }

    // The neurons of a layer are consecutive entries on the same run of inputs. Each one's
    // sum is a chain of dependent additions (micrograd's order, kept for the bits), so
    // forward() computes up to 16 of them together: for each input, its product with the
    // next weight of every neuron of the group is added to that neuron's sum. The same
    // additions in the same order per neuron, vectorized across the neurons, with the
    // adder's latency overlapped; the weights are read from a copy transposed for that
    // (`packed`, made once per forward() for all the groups that share them: a layer's,
    // for every sample). backward() adds a group's contributions to each input's grad in
    // one pass per four neurons, in the order of the entries (last first).
    // A group is 2, 4, 8 or 16 entries in runs (record()) of the same size and inputs
    // whose weights and biases come before the group, each neuron's after the previous
    // one's (as nn lays them out; so they are apart, each of their grads gets one
    // contribution from the group, and any order of the runs' elements gives the same
    // bits). Its first entry holds its size in `lanes`, its last one group_tail and the
    // distance back to the first.
    static void group(Program& p) {
        const std::size_t entries = p.op.size();
        p.lanes.assign(entries, 1);
        p.pack.assign(entries, 0);
        auto head = [&p](std::size_t i) { return p.operands.data() + p.b[i]; };
        auto joins = [&](std::size_t first, std::size_t i) {
            if (i >= entries || !is_fused(p.op[i]) || !(head(i)[0] & in_runs)) return false;
            const std::uint32_t* a = head(first);
            const std::uint32_t* b = head(i);
            const std::size_t before = p.leaves + first, n = b[0] & ~in_runs;
            if (b[0] != a[0] || b[2] != a[2] || b[1] + n > before || p.a[i] >= before) return false;
            if (i == first) return true;
            // after the previous neuron's weights and bias
            const std::size_t last = std::max<std::size_t>(head(i - 1)[1] + n - 1, p.a[i - 1]);
            return std::min<std::size_t>(b[1], p.a[i]) > last;
        };
        // The first group of each pack, by its first weight slot and size.
        std::unordered_map<std::uint64_t, std::size_t> packs;
        for (std::size_t i = 0; i < entries;) {
            std::size_t g = 1;
            if (joins(i, i)) {
                while (g < max_lanes && joins(i, i + g)) ++g;
                while (g & (g - 1)) g &= g - 1;  // a power of two
            }
            p.lanes[i] = static_cast<std::uint8_t>(g);
            if (g > 1) {
                p.lanes[i + g - 1] = static_cast<std::uint8_t>(group_tail | (g - 1));
                const auto [at, first] = packs.emplace(std::uint64_t{head(i)[1]} << 5 | g, i);
                bool same = true;  // as the pack's first group's (else a pack of its own)
                for (std::size_t j = 1; j < g && same; ++j)
                    same = head(at->second + j)[1] == head(i + j)[1];
                if (first || !same) {
                    p.pack[i] = static_cast<std::uint32_t>(p.packed.size()) | pack_first;
                    p.packed.resize(p.packed.size() + g * (head(i)[0] & ~in_runs));
                } else {
                    p.pack[i] = p.pack[at->second] & ~pack_first;
                }
            }
            i += g;
        }
        if (p.packed.size() >= pack_first) throw std::length_error("Graph: too many weights");
    }

    // The inputs must be distinct leaves of the graph (slots marked in `pending`).
    static void check_inputs(const std::vector<Value<T>>& inputs) {
        std::vector<std::uint32_t> seen;
        for (std::size_t j = 0; j < inputs.size(); ++j) {
            const Node<T>* n = inputs[j].node();
            const std::string at = "Graph: inputs[" + std::to_string(j) + "]";
            if (n->op != Op::leaf)
                throw std::invalid_argument(at + " is not a leaf (it is the result of '" +
                                            op_name(n->op) + "'): only leaves' data can be set");
            if (n->pending == 0) throw std::invalid_argument(at + " is not in the graph of root");
            seen.push_back(n->pending);
        }
        std::vector<std::uint32_t> sorted = seen;
        std::sort(sorted.begin(), sorted.end());
        const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
        if (dup != sorted.end()) {
            const auto first = std::find(seen.begin(), seen.end(), *dup) - seen.begin();
            const auto again = std::find(seen.begin() + first + 1, seen.end(), *dup) - seen.begin();
            throw std::invalid_argument("Graph: inputs[" + std::to_string(again) + "] is inputs[" +
                                        std::to_string(first) +
                                        "] again: each input can be listed once");
        }
    }

    // Captures again if a fused neuron of the program was expanded since capture.
    void refresh(const detail::Context<T>& ctx) {
        if (!p_->has_fused || ctx.expansions == p_->expansions) return;
        for (std::size_t i = 0; i < p_->op.size(); ++i) {
            if (p_->nodes[p_->leaves + i]->op != p_->op[i]) {
                p_ = own(capture(root_, inputs_));
                return;
            }
        }
        p_->expansions = ctx.expansions;
    }

    // After a replay of p: its fused neurons' inner state is in its arrays (Context::stale).
    static void leave_stale(detail::Context<T>& ctx, Program& p) noexcept {
        if (!p.has_fused) return;
        ctx.stale = &p;
        ctx.write_stale = &write_stale;
    }

    // Writes the inner state of p's fused neurons to their blocks (Program::forwarded,
    // backwarded), as the eager path leaves it.
    static void write_stale(void* program) noexcept {
        Program& p = *static_cast<Program*>(program);
        const T* data = p.data.data();
        for (std::size_t i = 0; i < p.op.size(); ++i) {
            if (!is_fused(p.op[i])) continue;
            Node<T>& node = *p.nodes[p.leaves + i];
            if (p.forwarded) {
                Fused<T>& f = detail::fused_part(node);
                const std::uint32_t* ops = p.operands.data() + p.b[i];
                f.bias = data[p.a[i]];
                for (std::uint32_t k = 0; k < f.n; ++k)
                    f.prod()[k] = op::Mul::forward(data[weight(ops, k)], data[input(ops, k)]);
            }
            detail::free_inner_grads(node);
            if (p.backwarded) {
                node.inner_grad = neuron_grad(p, i, data, p.grad.data());
                node.flags |= detail::flag_fused_uniform;
            } else {
                node.flags &= ~detail::flag_fused_uniform;
            }
        }
        p.forwarded = false;  // the blocks hold it now
    }

    // A fused neuron's operands: its weights' and inputs' slots, listed, or the first of
    // each run of consecutive slots (flagged in_runs, beside n; so nn's neurons are).
    static constexpr std::uint32_t in_runs = 1u << 31;
    static constexpr std::size_t max_lanes = 16;
    static constexpr std::uint32_t pack_first = 1u << 31;  // in `pack`: group()
    static constexpr std::uint8_t group_tail = 0x80;       // in `lanes`: group()

    // forward() from entry i to stop (or the end of the group there); returns where it
    // stopped. backward_chunk(): backward() from entry i - 1 down to stop.
    static std::size_t forward_chunk(Program& p, std::size_t i, std::size_t stop, T* data) {
#ifdef MICROGRAD_AVX2
        if (detail::has_avx2()) return forward_chunk_avx2(p, i, stop, data);
#endif
        return forward_entries(p, i, stop, data);
    }
    static std::size_t backward_chunk(const Program& p, std::size_t i, std::size_t stop,
                                      const T* data, T* grad) {
#ifdef MICROGRAD_AVX2
        if (detail::has_avx2()) return backward_chunk_avx2(p, i, stop, data, grad);
#endif
        return backward_entries(p, i, stop, data, grad);
    }
#ifdef MICROGRAD_AVX2
    MICROGRAD_AVX2 MICROGRAD_FLATTEN static std::size_t forward_chunk_avx2(Program& p,
                                                                           std::size_t i,
                                                                           std::size_t stop,
                                                                           T* data) {
        return forward_entries(p, i, stop, data);
    }
    MICROGRAD_AVX2 MICROGRAD_FLATTEN static std::size_t backward_chunk_avx2(
        const Program& p, std::size_t i, std::size_t stop, const T* data, T* grad) {
        return backward_entries(p, i, stop, data, grad);
    }
#endif
    MICROGRAD_FLATTEN static std::size_t forward_entries(Program& p, std::size_t i,
                                                         std::size_t stop, T* data) {
        while (i < stop) i += forward_entry(p, i, data);
        return i;
    }
    MICROGRAD_FLATTEN static std::size_t backward_entries(const Program& p, std::size_t i,
                                                          std::size_t stop, const T* data,
                                                          T* grad) {
        while (i > stop) i -= backward_entry(p, i - 1, data, grad);
        return i;
    }

    // Computes entry i (and the rest of its group, if it starts one) into data and into
    // its node; returns how many entries that was.
    static std::size_t forward_entry(Program& p, std::size_t i, T* data) {
        const std::size_t g = p.lanes[i];
        switch (g) {
            case 16: forward_neurons<16>(p, i, data); break;
            case 8: forward_neurons<8>(p, i, data); break;
            case 4: forward_neurons<4>(p, i, data); break;
            case 2: forward_neurons<2>(p, i, data); break;
            default: forward_one(p, i, data);
        }
        for (std::size_t j = 0; j < g; ++j) {
            Node<T>& node = *p.nodes[p.leaves + i + j];
            node.data = data[p.leaves + i + j];
            node.grad = T(0);  // as in a freshly built graph
        }
        return g;
    }

    static void forward_one(Program& p, std::size_t i, T* data) {
        T& out = data[p.leaves + i];
        const std::uint32_t a = p.a[i], b = p.b[i];
        visit(
            p.op[i],
            [&](auto row) {
                using Rule = decltype(row);
                if constexpr (Rule::custom) {
                    return 0;  // refused by capture()
                } else if constexpr (Rule::arity == op::many) {
                    if (p.operands[b] & in_runs)
                        forward_neurons<1>(p, i, data);
                    else
                        out = forward_neuron(p, i, data);
                } else if constexpr (Rule::arity == 2) {
                    out = Rule::forward(data[a], data[b]);
                } else if constexpr (Rule::arity == 1) {
                    out = Rule::forward(data[a], Rule::constant ? p.constants[b] : T(0));
                }
                return 0;
            },
            0);
    }

    // Propagates entry i's grad (and, if it ends a group, the whole group's) into its
    // inputs' grads; returns how many entries that was.
    static std::size_t backward_entry(const Program& p, std::size_t i, const T* data, T* grad) {
        if (p.lanes[i] & group_tail) {
            const std::size_t first = i - (p.lanes[i] & ~group_tail), g = p.lanes[first];
            for (std::size_t j = 0; j < g; ++j)  // final: their consumers come after them
                p.nodes[p.leaves + first + j]->grad = grad[p.leaves + first + j];
            if (g == 2) {
                backward_neurons<2>(p, first, data, grad);
            } else {
                for (std::size_t j = g; j > 0; j -= 4)
                    backward_neurons<4>(p, first + j - 4, data, grad);
            }
            return g;
        }
        const std::size_t o = p.leaves + i;
        const T g = grad[o];
        p.nodes[o]->grad = g;  // final: its consumers come after it
        const std::uint32_t a = p.a[i], b = p.b[i];
        visit(
            p.op[i],
            [&](auto row) {
                using Rule = decltype(row);
                if constexpr (!Rule::gradient || Rule::custom) {
                    return 0;  // custom: refused by capture()
                } else if constexpr (Rule::arity == op::many) {
                    if (p.operands[b] & in_runs)
                        backward_neurons<1>(p, i, data, grad);
                    else
                        backward_neuron(p, i, data, grad);
                } else if constexpr (Rule::arity == 2) {
                    const Partials<T> d = Rule::partials(data[a], data[b], data[o]);
                    grad[a] += d.dx * g;
                    grad[b] += d.dy * g;
                } else if constexpr (Rule::arity == 1) {
                    const T k = Rule::constant ? p.constants[b] : T(0);
                    grad[a] += Rule::partials(data[a], k, data[o]).dx * g;
                }
                return 0;
            },
            0);
        return 1;
    }

    // A fused neuron's k-th weight's and input's slots.
    static std::uint32_t weight(const std::uint32_t* ops, std::uint32_t k) {
        return ops[0] & in_runs ? ops[1] + k : ops[1 + k];
    }
    static std::uint32_t input(const std::uint32_t* ops, std::uint32_t k) {
        return ops[0] & in_runs ? ops[2] + k : ops[1 + ops[0] + k];
    }

    // A fused neuron with listed operands: micrograd's sum((wi*xi ...), b) in its order,
    // then its relu. (Its block's products and bias are left to write_stale().)
    static T forward_neuron(const Program& p, std::size_t i, const T* data) {
        const std::uint32_t* ops = p.operands.data() + p.b[i];
        T sum = data[p.a[i]];
        for (std::uint32_t k = 0; k < ops[0]; ++k)
            sum =
                op::Add::forward(sum, op::Mul::forward(data[weight(ops, k)], data[input(ops, k)]));
        return finish_neuron(p, i, sum);
    }

    // The same for the G neurons in runs of a group (group()) at once, or for one neuron
    // in runs (G = 1, its weights read in place).
    template <int G>
    static void forward_neurons(Program& p, std::size_t i, T* data) {
        const std::uint32_t* head = p.operands.data() + p.b[i];
        const std::uint32_t n = head[0] & ~in_runs;
        T* w = G == 1 ? data + head[1] : p.packed.data() + (p.pack[i] & ~pack_first);
        if (G > 1 && (p.pack[i] & pack_first)) {
            for (int j = 0; j < G; ++j) {
                const T* row = data + p.operands[p.b[i + j] + 1];
                for (std::uint32_t k = 0; k < n; ++k) w[k * G + j] = row[k];
            }
        }
        T sum[G];
        for (int j = 0; j < G; ++j) sum[j] = data[p.a[i + j]];
        add_products<G>(sum, w, data + head[2], n);
        for (int j = 0; j < G; ++j) data[p.leaves + i + j] = finish_neuron(p, i + j, sum[j]);
    }

    // sum[j] = sum[j] + w[k * G + j] * x[k] for k = 0, 1, ... n - 1, for each j < G: G chains
    // of roundings, each in micrograd's order. Where the compiler has vector types (GCC,
    // Clang), the G sums are held in vector registers across the loop, one rounding per
    // lane; left to itself, its vectorizer would vectorize the loop over k instead, adding
    // the lanes one at a time.
    template <int G>
    static void add_products(T* sum, const T* w, const T* x, std::uint32_t n) {
#if defined(__GNUC__)
        if constexpr (G > 1) {
            constexpr std::size_t bytes = std::min<std::size_t>(16, G * sizeof(T));
            constexpr int lanes = static_cast<int>(bytes / sizeof(T)), vectors = G / lanes;
            typedef T V __attribute__((vector_size(bytes)));
            V acc[vectors];
            std::memcpy(acc, sum, sizeof acc);
            for (std::uint32_t k = 0; k < n; ++k, w += G) {
                V xk;
                for (int l = 0; l < lanes; ++l) xk[l] = x[k];
                for (int v = 0; v < vectors; ++v) {
                    V wk;
                    std::memcpy(&wk, w + v * lanes, sizeof wk);
                    acc[v] = acc[v] + wk * xk;
                }
            }
            std::memcpy(sum, acc, sizeof acc);
            return;
        }
#endif
        for (std::uint32_t k = 0; k < n; ++k, w += G)
            for (int j = 0; j < G; ++j)
                sum[j] = op::Add::forward(sum[j], op::Mul::forward(w[j], x[k]));
    }

    static T finish_neuron(const Program& p, std::size_t i, T sum) {
        return p.op[i] == Op::neuron_relu ? op::Relu::forward(sum, T(0)) : sum;
    }

    // A fused neuron's inner grads in a freshly built graph after backward() (all the same:
    // propagate_fused's first).
    static T neuron_grad(const Program& p, std::size_t i, const T* data, const T* grad) {
        const std::size_t o = p.leaves + i;
        const bool relu = p.op[i] == Op::neuron_relu;
        const T from_relu = relu ? op::Relu::partials(T(0), T(0), data[o]).dx * grad[o] : T(0);
        return T(0) + (relu ? from_relu : grad[o]);
    }

    // The bias's share: s[0]'s grad, which is the node's own when s[0] is the node.
    static T to_bias(const Program& p, std::size_t i, const T* grad, std::uint32_t n, T g) {
        const std::size_t o = p.leaves + i;
        return (n == 1 && p.op[i] == Op::neuron) ? grad[o] : g;
    }

    // A fused neuron's backward step with listed operands, in micrograd's order.
    static void backward_neuron(const Program& p, std::size_t i, const T* data, T* grad) {
        const T g = neuron_grad(p, i, data, grad);
        const std::uint32_t* ops = p.operands.data() + p.b[i];
        const std::uint32_t n = ops[0];
        const std::uint32_t* w = ops + 1;
        const std::uint32_t* x = w + n;
        for (std::uint32_t k = n - 1; k > 0; --k) {
            grad[w[k]] += data[x[k]] * g;
            grad[x[k]] += data[w[k]] * g;
        }
        grad[p.a[i]] += to_bias(p, i, grad, n, g);  // before m[0], as micrograd's order
        grad[w[0]] += data[x[0]] * g;
        grad[x[0]] += data[w[0]] * g;
    }

    // The same for the G neurons in runs of a group (group()), last first as backward()
    // sweeps them: every slot of their weights and biases gets one contribution, any order
    // giving the same bits, and each input's grad gets theirs in the order of the sweep.
    template <int G>
    static void backward_neurons(const Program& p, std::size_t i, const T* data, T* grad) {
        const std::uint32_t* head = p.operands.data() + p.b[i];
        const std::uint32_t n = head[0] & ~in_runs;
        const T* x = data + head[2];
        T* x_grad = grad + head[2];
        const T* w[G];
        T* w_grad[G];
        T g[G];
        for (int j = G; j-- > 0;) {
            const std::uint32_t at = p.operands[p.b[i + j] + 1];
            w[j] = data + at;
            w_grad[j] = grad + at;
            g[j] = neuron_grad(p, i + j, data, grad);
            grad[p.a[i + j]] += to_bias(p, i + j, grad, n, g[j]);
        }
        MICROGRAD_IVDEP
        for (std::uint32_t k = 0; k < n; ++k) {
            const T xk = x[k];
            T xg = x_grad[k];
            for (int j = G; j-- > 0;) {
                w_grad[j][k] += xk * g[j];
                xg += w[j][k] * g[j];
            }
            x_grad[k] = xg;
        }
    }

    Value<T> root_;
    std::vector<Value<T>> inputs_;
    Owned p_;
};

}  // namespace micrograd
