// micrograd/mlp.hpp: micrograd's Layer and MLP forward passes, one fused neuron each.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fused.hpp"

namespace micrograd {

// One neuron of a layer: its weights (a row, shared by every node built from it), its
// bias, and whether a ReLU follows (micrograd's `nonlin`).
template <class T>
struct NeuronParams {
    NodeRow<T> w;
    Value<T> b;
    bool relu;
};

template <class T>
using LayerParams = std::vector<NeuronParams<T>>;

// micrograd's Layer.__call__: every neuron on the same n inputs, in order, each one fused
// node (fused.hpp's neuron()), into `out` (cleared first; its capacity is reused). The
// neurons share one row of x's nodes; a number in x becomes a new leaf for each neuron
// instead, as micrograd's `wi * xi` makes a Value(xi) at each use. std::invalid_argument,
// before any node is made, when a neuron has not exactly n weights.
template <class T>
MICROGRAD_FLATTEN void layer_forward(const LayerParams<T>& layer, const Operand<T>* x,
                                     std::size_t n, std::vector<Value<T>>& out) {
    for (const NeuronParams<T>& p : layer)
        if (p.w.size() != n)
            throw std::invalid_argument("Neuron(" + std::to_string(p.w.size()) + ") got " +
                                        std::to_string(n) + " inputs; it needs exactly " +
                                        std::to_string(p.w.size()));
    out.clear();
    out.reserve(layer.size());
    bool numbers = false;
    for (std::size_t k = 0; k < n; ++k) numbers |= x[k].value == nullptr;
    if (numbers) {
        for (const NeuronParams<T>& p : layer)
            out.push_back(neuron(p.w, p.b, NodeRow<T>(x, n), p.relu));
    } else {
        const NodeRow<T> shared(x, n);
        for (const NeuronParams<T>& p : layer) out.push_back(neuron(p.w, p.b, shared, p.relu));
    }
}

// micrograd's MLP.__call__: the layers in turn, from the n operands x. With no layers
// there is nothing to compute: the result is empty (micrograd returns x itself).
template <class T>
std::vector<Value<T>> mlp_forward(const std::vector<LayerParams<T>>& layers, const Operand<T>* x,
                                  std::size_t n) {
    std::vector<Value<T>> out, next;  // this layer's values, and the one before's
    std::vector<Operand<T>> in;
    for (const LayerParams<T>& layer : layers) {
        layer_forward(layer, x, n, next);  // reads `out` through x; `next` is free
        out.swap(next);
        in.assign(out.size(), Operand<T>{nullptr, T(0)});
        for (std::size_t k = 0; k < out.size(); ++k) in[k].value = &out[k];
        x = in.data(), n = in.size();
    }
    return out;
}

}  // namespace micrograd
