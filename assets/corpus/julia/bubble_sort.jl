# Passes swap adjacent out-of-order pairs; stop early when a pass makes no swap
function bubble_sort(x::Vector{<:Real})
    a = copy(x)
    for hi in length(a):-1:2
        swapped = false
        for i in 1:hi-1
            if a[i] > a[i + 1]
                a[i], a[i + 1] = a[i + 1], a[i]
                swapped = true
            end
        end
        swapped || break
    end
    return a
end
