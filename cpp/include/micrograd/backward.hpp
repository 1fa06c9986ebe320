// micrograd/backward.hpp: reverse-mode sweep from a root, with no recursion.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "release.hpp"

namespace micrograd {
namespace detail {

// Calls visit(input) for each input of n that has a backward step of its own (not a
// leaf). A fused neuron's other inputs are in its rows, vertices of the walks too
// (enter(row) says whether to visit a row's nodes): fused_node.hpp.
template <class T, class Visit, class Enter>
void for_each_interior_input(Node<T>& n, Visit visit, Enter enter) {
    if (is_neuron_of_leaves(n)) return;
    if (n.a->op != Op::leaf) visit(n.a);
    if (is_binary(n.op) && n.b->op != Op::leaf) visit(n.b);
    if (is_fused(n.op)) for_each_interior_row_node(n, visit, enter);
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
                if (auto* hook = context<T>().hooks.custom_backward) hook(&n);
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

// How many nodes a walk handles between two polls of Hooks::interrupted.
inline constexpr unsigned poll_interval = 1u << 16;

}  // namespace detail

// Thrown by backward() when Hooks::interrupted asks it to stop.
struct Interrupted : std::exception {
    const char* what() const noexcept override { return "backward() was interrupted"; }
};

namespace detail {

// Holds Context::walking while a walk (or a replay: graph.hpp) runs. Code run by the
// interrupt poll (a Python signal handler) could start another one; the nodes' counts
// belong to the running walk, so that is refused.
template <class T>
class Walking {
public:
    Walking(Context<T>& ctx, const char* what) : flag_(ctx.walking) {
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

// Polls Hooks::interrupted every poll_interval nodes; throws Interrupted when it says so.
template <class T>
class Poll {
public:
    explicit Poll(const Context<T>& ctx) : interrupted_(ctx.hooks.interrupted) {}
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
                    if (in->pending++ == 0 && !is_neuron_of_leaves(*in)) stack.push_back(in);
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

// One node's own backward step, as micrograd's `node._backward()`: adds its grad times its
// local derivatives into its inputs' grads, once (a leaf: nothing). A fused neuron is
// expanded first, so that the step is that of micrograd's last node for it.
template <class T>
void backward_step(Node<T>* n) {
    if (n->op == Op::leaf) return;
    expand(n);
    detail::propagate(*n);
}

}  // namespace micrograd
