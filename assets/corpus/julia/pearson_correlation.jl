# Covariance of x and y divided by the product of their standard deviations
function pearson(x::Vector{<:Real}, y::Vector{<:Real})
    n = length(x)
    length(y) == n || throw(ArgumentError("lengths differ"))
    mx, my = sum(x) / n, sum(y) / n
    sxy = sxx = syy = 0.0
    for i in 1:n
        dx, dy = x[i] - mx, y[i] - my
        sxy += dx * dy
        sxx += dx^2
        syy += dy^2
    end
    return sxy / sqrt(sxx * syy)
end
