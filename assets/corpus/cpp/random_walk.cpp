#include <random>
#include <vector>

// Simulates n steps of +1 or -1 starting at 0; returns all n + 1 positions.
std::vector<int> random_walk(int n, unsigned seed) {
    std::mt19937 gen(seed);
    std::bernoulli_distribution coin(0.5);
    std::vector<int> pos(n + 1, 0);
    for (int i = 1; i <= n; ++i) {
        // Each step goes right or left with equal probability.
        pos[i] = pos[i - 1] + (coin(gen) ? 1 : -1);
    }
    return pos;
}
