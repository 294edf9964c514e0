# Returns the 1-based index of target in the sorted vector a, or -1 if absent
function binary_search(a::Vector{<:Real}, target::Real)
    lo, hi = 1, length(a)
    while lo <= hi
        mid = div(lo + hi, 2)
        if a[mid] == target
            return mid
        elseif a[mid] < target
            lo = mid + 1
        else
            hi = mid - 1
        end
    end
    return -1
end
