# k equal-width bins on [min, max]; the maximum itself goes into the last bin
function histogram(x::Vector{<:Real}, k::Int)
    lo, hi = minimum(x), maximum(x)
    width = (hi - lo) / k
    counts = zeros(Int, k)
    for v in x
        bin = width > 0 ? floor(Int, (v - lo) / width) + 1 : 1
        counts[min(bin, k)] += 1
    end
    return counts
end
