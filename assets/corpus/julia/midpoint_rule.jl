# Sum of f at the centre of each of the n subintervals, times the width h
function midpoint_rule(f::Function, a::Real, b::Real, n::Int)
    h = (b - a) / n
    s = 0.0
    for i in 1:n
        s += f(a + (i - 0.5) * h)
    end
    return s * h
end
