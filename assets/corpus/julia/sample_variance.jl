# Two passes: the mean first, then squared deviations divided by n - 1
function mean_variance(x::Vector{<:Real})
    n = length(x)
    n >= 2 || throw(ArgumentError("need at least two values"))
    m = sum(x) / n
    s = 0.0
    for v in x
        s += (v - m)^2
    end
    return m, s / (n - 1)
end
