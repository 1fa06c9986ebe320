// micrograd/serialize.hpp: a graph as flat arrays and back, for copies and pickles.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fused.hpp"

namespace micrograd {

// The graph below a root as arrays, inputs before the nodes that use them, the root last.
// Indices 0 .. external.size() - 1 name nodes that a copy shares rather than copies (the
// parameters of a model, say); index external.size() + j names the j-th node described by
// the arrays. Fused neurons are expanded into micrograd's nodes first (as `_prev` does),
// so only the ops of ops.hpp with at most two inputs appear.
template <class T>
struct FlatGraph {
    std::vector<Node<T>*> external;      // shared nodes (from flatten(); the caller's in rebuild())
    std::vector<Node<T>*> source;        // flatten(): the node each entry describes
    std::vector<Op> ops;                 // per node
    std::vector<std::uint32_t> inputs;   // per node, arity(op) indices (earlier nodes)
    std::vector<T> data, grad;           // per node
    std::vector<T> exponents;            // per pow_const node, in order: its k
    std::vector<std::uint8_t> int_exps;  // idem: 1 if k was given as an integer ("**2")
};

// The name an op is stored under (fused ops are not stored: arity() is op::many for them,
// see FlatGraph): micrograd's label and the number of inputs ("+:2",
// "**:1" for x**k, "**:2" for x**y, ":0" for a leaf). Names, not enum values, so that a
// stored graph stays readable when ops are added; op_from_key() is its inverse.
inline std::string op_key(Op op) {
    return std::string(op_name(op)) + ":" + std::to_string(arity(op));
}

// The op stored under `key`, found by walking the enum from 0 until op_name() no longer
// knows the value. Throws std::invalid_argument for a key no op has.
inline Op op_from_key(const std::string& key) {
    for (unsigned i = 0; i < 256; ++i) {
        const Op op = static_cast<Op>(i);
        if (std::strcmp(op_name(op), "?") == 0) break;
        if (!is_fused(op) && !is_custom(op) && op_key(op) == key) return op;
    }
    throw std::invalid_argument("unknown op '" + key + "'");
}

// Flattens the graph below root (expanding fused neurons on the way, as reading `_prev`
// does). keep(node) says whether a node other than the root is shared rather than copied;
// a kept node's inputs are not visited. Depth-first with an explicit stack: any depth.
template <class T, class Keep>
FlatGraph<T> flatten(Node<T>* root, Keep keep) {
    FlatGraph<T> g;
    // Index of each node seen: j for the j-th copied node, ~e for the e-th kept node.
    std::unordered_map<const Node<T>*, std::uint32_t> index;
    std::vector<std::pair<Node<T>*, int>> stack;  // a node and how many inputs it has pushed
    auto visit = [&](Node<T>* n) {
        if (n != root && keep(n)) {
            index.emplace(n, ~static_cast<std::uint32_t>(g.external.size()));
            g.external.push_back(n);
            return;
        }
        if (is_custom(n->op))
            throw std::invalid_argument(
                "the graph holds a custom op (a node made as Value(data, children, op) with "
                "its own _backward): its backward is code, which is not copied or pickled");
        expand(n);
        index.emplace(n, 0);  // placed when its inputs are
        stack.emplace_back(n, 0);
    };
    visit(root);
    while (!stack.empty()) {
        auto& [n, pushed] = stack.back();
        if (pushed < arity(n->op)) {
            Node<T>* input = pushed++ == 0 ? n->a : n->b;
            if (index.count(input) == 0) visit(input);  // may reallocate `stack`
            continue;
        }
        index[n] = static_cast<std::uint32_t>(g.source.size());
        g.source.push_back(n);
        stack.pop_back();
    }
    const auto kept = static_cast<std::uint32_t>(g.external.size());
    auto position = [&](const Node<T>* n) {
        const std::uint32_t i = index.at(n);
        return i > static_cast<std::uint32_t>(~kept) ? ~i : kept + i;
    };
    const std::size_t count = g.source.size();
    g.ops.reserve(count);
    g.data.reserve(count);
    g.grad.reserve(count);
    for (const Node<T>* n : g.source) {
        g.ops.push_back(n->op);
        g.data.push_back(n->data);
        g.grad.push_back(n->grad);
        if (arity(n->op) >= 1) g.inputs.push_back(position(n->a));
        if (arity(n->op) == 2) g.inputs.push_back(position(n->b));
        if (n->op == Op::pow_const) {
            g.exponents.push_back(n->k);
            g.int_exps.push_back((n->flags & detail::flag_int_exponent) ? 1 : 0);
        }
    }
    return g;
}

// New nodes as g describes them, with g.external's nodes as the shared ones; returns a
// handle to each, in g's order (the root last). Everything is checked before any node is
// made: a malformed g throws std::invalid_argument naming what is wrong.
template <class T>
std::vector<Value<T>> rebuild(const FlatGraph<T>& g) {
    const std::size_t count = g.ops.size(), kept = g.external.size();
    auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
    if (count == 0) fail("the graph has no nodes");
    if (g.data.size() != count || g.grad.size() != count)
        fail("the graph has " + std::to_string(count) + " ops but " +
             std::to_string(g.data.size()) + " data and " + std::to_string(g.grad.size()) +
             " grads");
    std::size_t inputs = 0, pows = 0;
    for (std::size_t j = 0; j < count; ++j) {
        const Op op = g.ops[j];
        if (is_fused(op) || is_custom(op) || std::strcmp(op_name(op), "?") == 0)
            fail("node " + std::to_string(j) + " has an op that cannot be stored");
        for (int k = 0; k < arity(op); ++k, ++inputs) {
            if (inputs >= g.inputs.size()) fail("the graph lists too few inputs");
            if (g.inputs[inputs] >= kept + j)
                fail("node " + std::to_string(j) + "'s input " + std::to_string(g.inputs[inputs]) +
                     " is not an earlier node");
        }
        pows += op == Op::pow_const;
    }
    if (inputs != g.inputs.size()) fail("the graph lists too many inputs");
    if (g.exponents.size() != pows || g.int_exps.size() != pows)
        fail("the graph has " + std::to_string(pows) + " x**k nodes but " +
             std::to_string(g.exponents.size()) + " exponents");
    for (const Node<T>* n : g.external)
        if (n == nullptr) fail("a shared node is missing");

    std::vector<Value<T>> out;
    out.reserve(count);
    auto node = [&](std::uint32_t i) { return i < kept ? g.external[i] : out[i - kept].node(); };
    inputs = pows = 0;
    for (std::size_t j = 0; j < count; ++j) {
        const Op op = g.ops[j];
        Node<T>* a = arity(op) >= 1 ? node(g.inputs[inputs++]) : nullptr;
        Node<T>* b = arity(op) == 2 ? node(g.inputs[inputs++]) : nullptr;
        Node<T>* n = detail::new_node<T>(op, g.data[j], a, b);
        out.push_back(Value<T>::from_node(n));
        n->grad = g.grad[j];
        if (op == Op::pow_const) {
            n->k = g.exponents[pows];
            if (g.int_exps[pows++] != 0) n->flags |= detail::flag_int_exponent;
        }
    }
    return out;
}

// Little-endian bytes of numbers (uint8/32, float, double), and back: how a stored graph
// holds its arrays, the same on every machine. from_bytes() throws std::invalid_argument
// when the size is not a multiple of the item's.
namespace detail {
template <std::size_t N>
struct Bits;
template <>
struct Bits<1> {
    using type = std::uint8_t;
};
template <>
struct Bits<4> {
    using type = std::uint32_t;
};
template <>
struct Bits<8> {
    using type = std::uint64_t;
};
}  // namespace detail

template <class U>
std::string to_bytes(const std::vector<U>& items) {
    using Bits = typename detail::Bits<sizeof(U)>::type;
    std::string out(items.size() * sizeof(U), '\0');
    for (std::size_t i = 0; i < items.size(); ++i) {
        Bits bits;
        std::memcpy(&bits, &items[i], sizeof(U));
        for (std::size_t b = 0; b < sizeof(U); ++b)
            out[i * sizeof(U) + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
    }
    return out;
}

template <class U>
std::vector<U> from_bytes(const char* bytes, std::size_t size, const char* what) {
    using Bits = typename detail::Bits<sizeof(U)>::type;
    if (size % sizeof(U) != 0)
        throw std::invalid_argument(std::string(what) + " has " + std::to_string(size) +
                                    " bytes, not a multiple of " + std::to_string(sizeof(U)));
    std::vector<U> out(size / sizeof(U));
    for (std::size_t i = 0; i < out.size(); ++i) {
        Bits bits = 0;
        for (std::size_t b = 0; b < sizeof(U); ++b)
            bits |= static_cast<Bits>(static_cast<unsigned char>(bytes[i * sizeof(U) + b]))
                    << (8 * b);
        std::memcpy(&out[i], &bits, sizeof(U));
    }
    return out;
}

}  // namespace micrograd
