# Sort a copy; average the two middle values when the length is even
function median(x::Vector{<:Real})
    n = length(x)
    n > 0 || throw(ArgumentError("empty input"))
    s = sort(x)
    mid = div(n + 1, 2)
    return iseven(n) ? (s[mid] + s[mid + 1]) / 2 : float(s[mid])
end
