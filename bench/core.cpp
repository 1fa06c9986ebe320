// bench/core.cpp: the C++ core alone (no Python), next to a minimal flat-tape baseline.
//
//   core ENGINE WORKLOAD SIZE [DATA]
//     ENGINE    micrograd (the header-only core) | replay (the same, its graph captured once and
//               replayed: micrograd::Graph; moons only) | tape (the flat-tape floor below) |
//               tape-fused (the same tape with one entry per neuron; moons only)
//     WORKLOAD  moons (SIZE = training steps; DATA = the file run.py writes) | deep (SIZE = depth)
//
// Prints one JSON object: the time per unit in ns, peak resident-memory growth, and checks.
// Built by run.py: g++ -std=c++17 -O3 -DNDEBUG -ffp-contract=off -I cpp/include bench/core.cpp -o
// core
//
// micrograd-cpp and tape-fused build the same graph, node for node (a neuron is one node;
// constants become leaves, as micrograd's Value(other) does); tape builds micrograd's, one
// node per op. micrograd-cpp's time includes allocating its nodes from the arena, freeing
// them when the graph is dropped and reusing the slots in the next repetition; a tape's
// includes appending to its vector and truncating it again.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <micrograd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------- measurement helpers

long status_kib(const char* field) {  // a "VmRSS:"/"VmHWM:" line of /proc/self/status
    std::ifstream in("/proc/self/status");
    std::string key;
    long value = 0;
    while (in >> key) {
        if (key == field) {
            in >> value;
            return value;
        }
        in.ignore(1 << 12, '\n');
    }
    return -1;
}

// Peak RSS growth from construction on: the peak is reset through /proc/self/clear_refs.
struct PeakRss {
    PeakRss() {
        std::ofstream("/proc/self/clear_refs") << "5";
        base = status_kib("VmRSS:");
    }
    long bytes() const { return (status_kib("VmHWM:") - base) * 1024; }
    long base;
};

double now_ns() {
    return std::chrono::duration<double, std::nano>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// ---------------------------------------------------------------- the flat-tape floor

// A plain vector of {op, in0, in1, data, grad}, appended in creation order and swept
// backwards once. Entries below `keep` (the parameters) survive reset().
class Tape {
public:
    // neuron, neuron_relu: sum((w[k]*x[k] ...), b), relu'd or not, in one entry (as
    // micrograd-cpp's fused neurons): weights w = in0 .. in0+n-1 and bias b = in0+n (the
    // parameters in micrograd's order), inputs x = in1 .. in1+n-1 (a layer's outputs).
    enum class Op : std::uint8_t { leaf, add, mul, relu, neuron, neuron_relu };
    struct Node {
        double data, grad;
        std::uint32_t in0, in1, n;  // n: a neuron's inputs (in the padding: still 32 bytes)
        Op op;
    };
    using Id = std::uint32_t;

    Id push(Op op, double data, Id a = 0, Id b = 0, std::uint32_t n = 0) {
        nodes_.push_back({data, 0.0, a, b, n, op});
        return static_cast<Id>(nodes_.size() - 1);
    }
    Id leaf(double x) { return push(Op::leaf, x); }
    Id add(Id a, Id b) { return push(Op::add, nodes_[a].data + nodes_[b].data, a, b); }
    Id mul(Id a, Id b) { return push(Op::mul, nodes_[a].data * nodes_[b].data, a, b); }
    Id relu(Id a) { return push(Op::relu, nodes_[a].data < 0 ? 0.0 : nodes_[a].data, a); }
    Id neuron(Id w, Id x, std::uint32_t n, bool relu) {
        double sum = nodes_[w + n].data;
        for (std::uint32_t k = 0; k < n; ++k) sum = sum + nodes_[w + k].data * nodes_[x + k].data;
        if (relu) return push(Op::neuron_relu, sum < 0 ? 0.0 : sum, w, x, n);
        return push(Op::neuron, sum, w, x, n);
    }

    void backward(Id root) {
        nodes_[root].grad = 1.0;
        for (std::size_t i = root + 1; i-- > keep_;) {
            const Node& n = nodes_[i];
            switch (n.op) {
                case Op::leaf: break;
                case Op::add:
                    nodes_[n.in0].grad += n.grad;
                    nodes_[n.in1].grad += n.grad;
                    break;
                case Op::mul:
                    nodes_[n.in0].grad += nodes_[n.in1].data * n.grad;
                    nodes_[n.in1].grad += nodes_[n.in0].data * n.grad;
                    break;
                case Op::relu: nodes_[n.in0].grad += (n.data > 0) * n.grad; break;
                case Op::neuron:
                case Op::neuron_relu: {
                    const double g = n.op == Op::neuron_relu ? (n.data > 0) * n.grad : n.grad;
                    nodes_[n.in0 + n.n].grad += g;
                    for (std::uint32_t k = n.n; k-- > 0;) {
                        nodes_[n.in0 + k].grad += nodes_[n.in1 + k].data * g;
                        nodes_[n.in1 + k].grad += nodes_[n.in0 + k].data * g;
                    }
                    break;
                }
            }
        }
    }
    void keep_current() { keep_ = nodes_.size(); }
    void reset() { nodes_.resize(keep_); }
    std::size_t size() const { return nodes_.size(); }
    Node& operator[](Id i) { return nodes_[i]; }

private:
    std::vector<Node> nodes_;
    std::size_t keep_ = 0;
};

// ---------------------------------------------------------------- moons

struct Moons {
    std::vector<double> x0, x1, y, params;  // params in micrograd's parameters() order
};

Moons read_moons(const char* path) {
    std::ifstream in(path);
    Moons m;
    std::size_t n = 0, p = 0;
    in >> n;
    m.x0.resize(n), m.x1.resize(n), m.y.resize(n);
    for (std::size_t i = 0; i < n; ++i) in >> m.x0[i] >> m.x1[i] >> m.y[i];
    in >> p;
    m.params.resize(p);
    for (double& v : m.params) in >> v;
    if (!in || n == 0) {
        std::fprintf(stderr, "core: cannot read moons data from %s\n", path);
        std::exit(2);
    }
    return m;
}

constexpr std::size_t kSizes[] = {2, 16, 16, 1};  // MLP(2, [16, 16, 1])
constexpr std::size_t kLayers = 3;
constexpr double kAlpha = 1e-4;

double learning_rate(int k) {
    return 1.0 - 0.9 * k / 100;
}

struct MoonsRun {
    double loss = 0;
    std::size_t nodes_per_step = 0;
};

// The demo step with micrograd-cpp's own builders (micrograd::mlp_forward: a fused neuron
// for every neuron of every layer, each layer's neurons sharing one row of inputs and each
// neuron its row of weights; hinge_loss, l2_penalty, SGD), as the Python bindings call them.
MoonsRun moons_micrograd(const Moons& m, int steps, bool replay) {
    using V = micrograd::Value<double>;
    using Row = micrograd::NodeRow<double>;
    const std::vector<V> params(m.params.begin(), m.params.end());
    std::vector<micrograd::LayerParams<double>> layers(kLayers);
    for (std::size_t l = 0, at = 0; l < kLayers; ++l) {
        for (std::size_t j = 0; j < kSizes[l + 1]; ++j, at += kSizes[l] + 1) {
            std::vector<const V*> w;
            for (std::size_t i = 0; i < kSizes[l]; ++i) w.push_back(&params[at + i]);
            layers[l].push_back({Row(w.data(), w.size()), params[at + kSizes[l]], l + 1 < kLayers});
        }
    }
    micrograd::SGD<double> opt(params, 1.0);
    MoonsRun run;
    std::vector<V> scores;
    std::optional<micrograd::Graph<double>> graph;  // replay: the first step's, captured
    for (int k = 0; k < steps; ++k) {
        if (graph) {
            graph->forward();
            opt.zero_grad();
            graph->backward();
            opt.set_lr(learning_rate(k));
            opt.step();
            run.loss = graph->root().data();
            continue;
        }
        scores.clear();  // the last step's graph goes
        const std::size_t live_before = micrograd::arena_stats<double>().live;
        for (std::size_t s = 0; s < m.y.size(); ++s) {
            const V x[] = {V(m.x0[s]), V(m.x1[s])};
            const micrograd::Operand<double> in[] = {{&x[0], 0.0}, {&x[1], 0.0}};
            scores.push_back(micrograd::mlp_forward(layers, in, 2)[0]);
        }
        V loss = micrograd::hinge_loss(scores, m.y) + micrograd::l2_penalty(params, kAlpha);
        run.nodes_per_step = micrograd::arena_stats<double>().live - live_before;
        if (replay) graph.emplace(loss);
        opt.zero_grad();
        loss.backward();
        opt.set_lr(learning_rate(k));
        opt.step();
        run.loss = loss.data();
    }
    return run;
}

// The same step on the flat tape: node for node micrograd-cpp's graph when `fused` (one
// entry per neuron), else micrograd's (one entry per op).
MoonsRun moons_tape(const Moons& m, int steps, bool fused) {
    Tape t;
    for (double p : m.params) t.leaf(p);
    t.keep_current();
    auto sum = [&t](const std::vector<Tape::Id>& terms) {  // Python's sum(terms): 0 + ...
        Tape::Id s = t.leaf(0.0);
        for (Tape::Id x : terms) s = t.add(s, x);
        return s;
    };
    std::vector<Tape::Id> h, next;
    auto score = [&](std::size_t s) {  // the MLP on sample s; its output
        h = {t.leaf(m.x0[s]), t.leaf(m.x1[s])};
        for (std::size_t l = 0, at = 0; l < kLayers; ++l) {
            const bool relu = l + 1 < kLayers;
            next.clear();
            for (std::size_t j = 0; j < kSizes[l + 1]; ++j, at += h.size() + 1) {
                const auto w = static_cast<Tape::Id>(at), b = static_cast<Tape::Id>(at + h.size());
                if (fused) {  // h is a run of consecutive entries
                    next.push_back(t.neuron(w, h[0], static_cast<std::uint32_t>(h.size()), relu));
                    continue;
                }
                Tape::Id act = b;
                for (std::size_t i = 0; i < h.size(); ++i) act = t.add(act, t.mul(w + i, h[i]));
                next.push_back(relu ? t.relu(act) : act);
            }
            h.swap(next);
        }
        return h[0];
    };
    MoonsRun run;
    std::vector<Tape::Id> terms;
    for (int k = 0; k < steps; ++k) {
        terms.clear();
        for (std::size_t s = 0; s < m.y.size(); ++s)
            terms.push_back(t.relu(t.add(t.mul(score(s), t.leaf(-m.y[s])), t.leaf(1.0))));
        const Tape::Id data_loss = t.mul(sum(terms), t.leaf(1.0 / terms.size()));
        terms.clear();
        for (Tape::Id p = 0; p < m.params.size(); ++p) terms.push_back(t.mul(p, p));
        const Tape::Id loss = t.add(data_loss, t.mul(sum(terms), t.leaf(kAlpha)));
        run.nodes_per_step = t.size() - m.params.size();
        for (Tape::Id p = 0; p < m.params.size(); ++p) t[p].grad = 0.0;
        t.backward(loss);
        for (Tape::Id p = 0; p < m.params.size(); ++p) t[p].data -= learning_rate(k) * t[p].grad;
        run.loss = t[loss].data;
        t.reset();
    }
    return run;
}

// ---------------------------------------------------------------- deep chain

// x = x*1.0001 + 0.0001, n times, then backward from x; d x / d x0 = 1.0001**n.
double deep_micrograd(long n) {
    using V = micrograd::Value<double>;
    V x0 = 1.0;
    {
        V x = x0;
        for (long i = 0; i < n; ++i) x = x * 1.0001 + 0.0001;
        x.backward();
    }  // the graph is dropped here: every node but x0 goes back to the arena
    return x0.grad();
}

double deep_tape(long n) {
    static Tape t;  // kept across repetitions, as micrograd-cpp keeps its arena
    t.reset();
    const Tape::Id x0 = t.leaf(1.0);
    Tape::Id x = x0;
    for (long i = 0; i < n; ++i) x = t.add(t.mul(x, t.leaf(1.0001)), t.leaf(0.0001));
    t.backward(x);
    return t[x0].grad;
}

int usage() {
    std::fprintf(stderr,
                 "usage: core micrograd|replay|tape|tape-fused moons STEPS DATA | "
                 "core micrograd|tape deep N\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return usage();
    const std::string engine = argv[1], workload = argv[2];
    const long size = std::atol(argv[3]);
    const bool replay = engine == "replay", mg = engine == "micrograd" || replay,
               fused = engine == "tape-fused";
    if ((!mg && !fused && engine != "tape") || size < 1 || (replay && workload != "moons"))
        return usage();

    if (workload == "moons" && argc == 5) {
        const Moons m = read_moons(argv[4]);
        const int steps = static_cast<int>(size);
        const PeakRss mem;
        const double start = now_ns();
        const MoonsRun run = mg ? moons_micrograd(m, steps, replay) : moons_tape(m, steps, fused);
        const double per_step = (now_ns() - start) / steps;
        std::printf(
            "{\"ns\": %.1f, \"unit\": \"step\", \"count\": %d, \"steps\": %d, \"loss\": %.17g, "
            "\"peak_bytes\": %ld, \"ok\": true, \"note\": \"%zu nodes/step, %.1f ns/node\"}\n",
            per_step, steps, steps, run.loss, mem.bytes(), run.nodes_per_step,
            per_step / static_cast<double>(run.nodes_per_step));
        return 0;
    }
    if (workload == "deep" && argc == 4 && !fused) {
        const long reps = std::max(3L, 10'000'000L / size);  // build, backward, drop, repeated
        const PeakRss mem;
        double grad = 0;
        const double start = now_ns();
        for (long r = 0; r < reps; ++r) grad = mg ? deep_micrograd(size) : deep_tape(size);
        const double op_nodes = 2.0 * static_cast<double>(size);
        const double per_node = (now_ns() - start) / (static_cast<double>(reps) * op_nodes);
        // 1.0001**n overflows past n = 7.1e6: then the gradient must be inf too
        const double expected = std::exp(static_cast<double>(size) * std::log1p(1e-4));
        const bool ok =
            std::isinf(expected) ? std::isinf(grad) : std::fabs(grad / expected - 1) < 1e-6;
        std::printf(
            "{\"ns\": %.2f, \"unit\": \"op node\", \"count\": %.0f, \"op_nodes\": %.0f, "
            "\"peak_bytes\": %ld, \"ok\": %s, \"note\": \"%ld repetitions\"}\n",
            per_node, reps * op_nodes, op_nodes, mem.bytes(), ok ? "true" : "false", reps);
        return 0;
    }
    return usage();
}
