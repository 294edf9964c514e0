# Returns the 1-based index of the first element equal to target, or -1 if absent
function linear_search(a::Vector, target)
    for i in eachindex(a)
        if a[i] == target
            return i
        end
    end
    return -1
end
