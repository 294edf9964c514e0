# Swap the smallest remaining element into position i
function selection_sort(x::Vector{<:Real})
    a = copy(x)
    n = length(a)
    for i in 1:n-1
        m = i
        for j in i+1:n
            if a[j] < a[m]
                m = j
            end
        end
        a[i], a[m] = a[m], a[i]
    end
    return a
end
