# Slope b = Sxy / Sxx and intercept a = mean(y) - b * mean(x); returns (a, b)
function linear_fit(x::Vector{<:Real}, y::Vector{<:Real})
    n = length(x)
    length(y) == n || throw(ArgumentError("lengths differ"))
    mx, my = sum(x) / n, sum(y) / n
    sxy = sxx = 0.0
    for i in 1:n
        sxy += (x[i] - mx) * (y[i] - my)
        sxx += (x[i] - mx)^2
    end
    b = sxy / sxx
    return my - b * mx, b
end
