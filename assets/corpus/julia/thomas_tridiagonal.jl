# a: sub-diagonal (n-1), b: main diagonal (n), c: super-diagonal (n-1), d: right-hand side (n)
function thomas_solve(a::Vector{Float64}, b::Vector{Float64}, c::Vector{Float64}, d::Vector{Float64})
    n = length(b)
    cprime = zeros(n)
    dprime = zeros(n)
    cprime[1] = n > 1 ? c[1] / b[1] : 0.0
    dprime[1] = d[1] / b[1]
    # Forward sweep eliminates the sub-diagonal
    for i in 2:n
        m = b[i] - a[i-1] * cprime[i-1]
        cprime[i] = i < n ? c[i] / m : 0.0
        dprime[i] = (d[i] - a[i-1] * dprime[i-1]) / m
    end
    # Back substitution
    x = zeros(n)
    x[n] = dprime[n]
    for i in n-1:-1:1
        x[i] = dprime[i] - cprime[i] * x[i+1]
    end
    return x
end
