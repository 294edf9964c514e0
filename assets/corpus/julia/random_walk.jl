using Random

# Start at 0 and take n steps of +1 or -1; returns all n + 1 positions
function random_walk(n::Int, seed::Int)
    rng = MersenneTwister(seed)
    pos = zeros(Int, n + 1)
    for i in 1:n
        pos[i + 1] = pos[i] + (rand(rng, Bool) ? 1 : -1)
    end
    return pos
end
