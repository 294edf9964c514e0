# Grow a sorted prefix, shifting larger elements right to insert each new key
function insertion_sort(x::Vector{<:Real})
    a = copy(x)
    for i in 2:length(a)
        key = a[i]
        j = i - 1
        while j >= 1 && a[j] > key
            a[j + 1] = a[j]
            j -= 1
        end
        a[j + 1] = key
    end
    return a
end
