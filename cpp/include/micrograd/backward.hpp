// micrograd/backward.hpp: reverse-mode sweep from a root, with no recursion.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "node.hpp"

namespace micrograd {
namespace detail {

// Calls visit(input) for each input of n that has a backward step of its own (not a
// leaf). A fused neuron reaches its weights and inputs through rows, which the walks of
// backward() treat as vertices of the graph too: n calls enter(row) for each of its rows
// with a node that is not a leaf, and visits the row's nodes only when that returns true.
// So a row shared by the m neurons of a layer costs the walks m row visits plus one visit
// of each of its nodes, instead of m visits of each. Each node of a row is used by every
// neuron holding the row, so it is ready exactly when the row is, as in the unfused graph;
// its nodes are visited in order, so backward() pops them in the order in which it would
// reach them in the unfused graph, and every node gets its contributions in the same
// order, hence the same rounding, fused or not (where a neuron's weights are leaves, as
// in nn; with both rows holding interior nodes the order may differ, still topological).
template <class T, class Visit, class Enter>
void for_each_interior_input(Node<T>& n, Visit visit, Enter enter) {
    if (n.flags & flag_fused_leaves) return;
    if (n.a->op != Op::leaf) visit(n.a);
    if (is_binary(n.op) && n.b->op != Op::leaf) visit(n.b);
    if (is_fused(n.op)) {
        const Fused<T>& f = fused_part(n);
        for (Row<T>* row : {f.w, f.x}) {
            if (!row->interior || !enter(row)) continue;
            Node<T>** nodes = row->nodes();
            for (std::uint32_t k = 0; k < row->n; ++k)
                if (nodes[k]->op != Op::leaf) visit(nodes[k]);
        }
    }
}

// propagate() for a fused neuron: micrograd's steps for its inner nodes, in the order of
// the unfused graph (the relu, then s[n-1], m[n-1], s[n-2], ...), with their grads
// accumulated as micrograd accumulates them in its nodes. Their second backward allocates
// the arrays (std::bad_alloc leaves the node as it was).
template <class T>
void propagate_fused(Node<T>& n) {
    Fused<T>& f = fused_part(n);
    const std::size_t len = f.w->n;  // f.n, from a line that is in cache
    Node<T>** w = f.w->nodes();
    Node<T>** x = f.x->nodes();
    const bool relu = n.op == Op::neuron_relu;
    const T from_relu = relu ? op::Relu::partials(T(0), T(0), n.data).dx * n.grad : T(0);
    if (!(n.flags & (flag_fused_uniform | flag_fused_arrays))) {
        // The first time every inner grad goes from 0 to the same g (0 + g: -0.0 becomes
        // 0.0, as micrograd's `grad += g` from 0). Only b gets s[0]'s own grad: n.grad
        // when s[0] is the node itself.
        const T g = T(0) + (relu ? from_relu : n.grad);
        n.inner_grad = g;
        n.flags |= flag_fused_uniform;
        for (std::size_t k = len; k-- > 1;) {
            w[k]->grad += x[k]->data * g;
            x[k]->grad += w[k]->data * g;
        }
        n.a->grad += (len == 1 && !relu) ? n.grad : g;  // before m[0], as micrograd's order
        w[0]->grad += x[0]->data * g;
        x[0]->grad += w[0]->data * g;
        return;
    }
    if (n.flags & flag_fused_uniform) {  // the second time: the arrays start from inner_grad
        auto* grads = static_cast<T*>(context<T>().blocks.allocate(Fused<T>::grads_bytes(len)));
        std::fill(grads, grads + 2 * len, n.inner_grad);
        n.inner_grads = grads;
        n.flags = (n.flags & ~flag_fused_uniform) | flag_fused_arrays;
    }
    T* sum_grad = n.inner_grads;
    T* prod_grad = sum_grad + len;
    T g = n.grad;  // s[n-1]'s grad: the node's own, or what its relu gave it
    if (relu) {
        sum_grad[len - 1] += from_relu;
        g = sum_grad[len - 1];
    }
    for (std::size_t k = len; k-- > 0;) {
        // s[k] = s[k-1] + m[k]: both inputs get s[k]'s grad (s[-1] is the bias node)
        T& before = k > 0 ? sum_grad[k - 1] : n.a->grad;
        before += g;
        prod_grad[k] += g;
        // m[k] = w[k] * x[k]
        w[k]->grad += x[k]->data * prod_grad[k];
        x[k]->grad += w[k]->data * prod_grad[k];
        g = before;
    }
}

// Adds n's gradient, times its local derivatives, into its inputs. Each op's partials
// are inlined from its row, so add's `1 * g` compiles to `g`, as written out by hand.
template <class T>
void propagate(Node<T>& n) {
    visit(
        n.op,
        [&n](auto row) {
            using Rule = decltype(row);
            if constexpr (!Rule::gradient) {
                return 0;
            } else if constexpr (Rule::custom) {
                if (auto* hook = context<T>().custom_backward) hook(&n);
            } else if constexpr (Rule::arity == op::many) {
                propagate_fused(n);
            } else if constexpr (Rule::arity == 2) {
                Node<T>& x = *n.a;
                Node<T>& y = *n.b;
                const Partials<T> p = Rule::partials(x.data, y.data, n.data);
                x.grad += p.dx * n.grad;
                y.grad += p.dy * n.grad;
            } else if constexpr (Rule::arity == 1) {
                Node<T>& x = *n.a;
                x.grad += Rule::partials(x.data, Rule::constant ? n.k : T(0), n.data).dx * n.grad;
            }
            return 0;
        },
        0);
}

// Zeroes the counts `backward(root)` leaves behind when it stops early. Every node with a
// count is reachable from root or from a node still on the stack through nodes with
// counts, so the walk starts from both.
template <class T>
void reset_counts(Node<T>* root, std::vector<Node<T>*>& stack) noexcept {
    stack.push_back(root);  // failing to grow here terminates, as noexcept says
    while (!stack.empty()) {
        Node<T>* n = stack.back();
        stack.pop_back();
        n->pending = 0;
        for_each_interior_input(
            *n,
            [&stack](Node<T>* in) {
                if (in->pending != 0) stack.push_back(in);
            },
            [](Row<T>* row) {
                row->pending = 0;
                return true;
            });
    }
}

// How many nodes a walk handles between two polls of Context::interrupted.
inline constexpr unsigned poll_interval = 1u << 16;

}  // namespace detail

// Thrown by backward() when Context::interrupted asks it to stop.
struct Interrupted : std::exception {
    const char* what() const noexcept override { return "backward() was interrupted"; }
};

namespace detail {

// Holds Context::in_backward while a walk (or a replay: graph.hpp) runs. Code run by the
// interrupt poll (a Python signal handler) could start another one; the nodes' counts
// belong to the running walk, so that is refused.
template <class T>
class Walking {
public:
    Walking(Context<T>& ctx, const char* what) : flag_(ctx.in_backward) {
        if (flag_)
            throw std::logic_error(std::string(what) +
                                   " was called while another backward() is running (or a graph "
                                   "replay; from a signal handler?): call it after that returns");
        flag_ = true;
    }
    Walking(const Walking&) = delete;
    Walking& operator=(const Walking&) = delete;
    ~Walking() { flag_ = false; }

private:
    bool& flag_;
};

// Polls Context::interrupted every poll_interval nodes; throws Interrupted when it says so.
template <class T>
class Poll {
public:
    explicit Poll(const Context<T>& ctx) : interrupted_(ctx.interrupted) {}
    // After `done` more nodes (a replay counts a chunk of them at once).
    void operator()(unsigned done = 1) {
        if (until_ > done) {
            until_ -= done;
            return;
        }
        until_ = poll_interval;
        if (interrupted_ != nullptr && interrupted_()) throw Interrupted();
    }

private:
    bool (*interrupted_)() noexcept;
    unsigned until_ = poll_interval;
};

// Calls each(n) for every interior node n reachable from root, each after all of its
// consumers reachable from root: the order in which backward() propagates. Kahn's
// topological sort rather than micrograd's recursive DFS: a first walk counts, for each
// interior node, its consumers reachable from root (`pending`); a second hands a node to
// `each` once all of them have been handed. Both walks use one explicit stack, so memory
// grows with the graph's width, not its depth or size: a chain of ten million nodes needs
// a stack of one. Leaves are never visited. The order depends on the graph alone, never on
// its data. Runs under a Walking guard; if it stops early (std::bad_alloc growing its
// stack, or what `each` throws, or Interrupted), the counts are reset and the exception
// propagates.
template <class T, class Each>
void consumers_first(Context<T>& ctx, Node<T>* root, Each each) {
    auto& stack = ctx.stack;
    stack.clear();
    Poll<T> poll(ctx);
    try {
        stack.push_back(root);
        while (!stack.empty()) {
            Node<T>* n = stack.back();
            stack.pop_back();
            for_each_interior_input(
                *n,
                [&stack](Node<T>* in) {
                    // first sight: count its inputs (a neuron of leaves has none to count)
                    if (in->pending++ == 0 && !(in->flags & flag_fused_leaves)) stack.push_back(in);
                },
                [](Row<T>* row) { return row->pending++ == 0; });
            poll();
        }
        stack.push_back(root);
        while (!stack.empty()) {
            Node<T>* n = stack.back();
            stack.pop_back();
            each(*n);
            for_each_interior_input(
                *n,
                [&stack](Node<T>* in) {
                    if (--in->pending == 0) stack.push_back(in);
                },
                [](Row<T>* row) { return --row->pending == 0; });
            poll();
        }
    } catch (...) {
        reset_counts(root, stack);
        throw;
    }
}

}  // namespace detail

// micrograd's backward(): sets root's grad to 1, then adds into the grad of every node
// reachable from root its contribution, in detail::consumers_first's order. Grads are not
// zeroed first, so calling it twice accumulates exactly as micrograd does. If it stops
// early (std::bad_alloc, or Interrupted), grads may hold part of this backward's
// contributions.
template <class T>
void backward(Node<T>* root) {
    auto& ctx = detail::context<T>();
    const detail::Walking<T> walking(ctx, "backward()");
    detail::settle(ctx);
    root->grad = T(1);
    if (root->op == Op::leaf) return;
    detail::consumers_first(ctx, root, [](Node<T>& n) { detail::propagate(n); });
}

}  // namespace micrograd
