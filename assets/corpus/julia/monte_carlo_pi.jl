using Random

# Fraction of n uniform points in the unit square inside the quarter circle, times 4
function estimate_pi(n::Int, seed::Int)
    rng = MersenneTwister(seed)
    inside = 0
    for _ in 1:n
        x, y = rand(rng), rand(rng)
        if x^2 + y^2 <= 1
            inside += 1
        end
    end
    return 4 * inside / n
end
