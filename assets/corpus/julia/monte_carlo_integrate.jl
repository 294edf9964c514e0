using Random

# (b - a) times the mean of f at n uniform random points in [a, b]
function mc_integrate(f::Function, a::Real, b::Real, n::Int, seed::Int)
    rng = MersenneTwister(seed)
    s = 0.0
    for _ in 1:n
        s += f(a + (b - a) * rand(rng))
    end
    return (b - a) * s / n
end
