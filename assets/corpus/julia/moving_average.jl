# Mean of every full window of w values via a running sum; returns n - w + 1 values
function moving_average(x::Vector{Float64}, w::Int)
    n = length(x)
    1 <= w <= n || throw(ArgumentError("need 1 <= w <= length(x)"))
    out = zeros(n - w + 1)
    s = sum(x[1:w])
    out[1] = s / w
    for i in w+1:n
        s += x[i] - x[i - w]
        out[i - w + 1] = s / w
    end
    return out
end
