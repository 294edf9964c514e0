# Welford's update keeps a running mean mu and a sum m2 of squared deviations
function welford_std(x::Vector{<:Real}; sample::Bool=true)
    n = 0
    mu = 0.0
    m2 = 0.0
    for v in x
        n += 1
        delta = v - mu
        mu += delta / n
        m2 += delta * (v - mu)
    end
    # Divide by n - 1 for the sample estimate, by n for the population one
    return sqrt(m2 / (sample ? n - 1 : n))
end
