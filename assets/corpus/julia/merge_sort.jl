# Sort each half recursively, then merge the two sorted halves
function merge_sort(x::Vector{<:Real})
    n = length(x)
    n <= 1 && return copy(x)
    mid = div(n, 2)
    left = merge_sort(x[1:mid])
    right = merge_sort(x[mid+1:n])
    out = similar(x)
    i = j = 1
    for k in 1:n
        if j > length(right) || (i <= length(left) && left[i] <= right[j])
            out[k] = left[i]
            i += 1
        else
            out[k] = right[j]
            j += 1
        end
    end
    return out
end
