# Lomuto partition of a[lo:hi] around its last element, then recurse on both sides
function partition_sort!(a::Vector{<:Real}, lo::Int, hi::Int)
    lo >= hi && return a
    p = a[hi]
    i = lo
    for j in lo:hi-1
        if a[j] < p
            a[i], a[j] = a[j], a[i]
            i += 1
        end
    end
    a[i], a[hi] = a[hi], a[i]
    partition_sort!(a, lo, i - 1)
    partition_sort!(a, i + 1, hi)
    return a
end

# Returns a sorted copy; the input is left unchanged
function quick_sort(x::Vector{<:Real})
    return partition_sort!(copy(x), 1, length(x))
end
