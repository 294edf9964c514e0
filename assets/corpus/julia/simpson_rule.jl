# Weights 1, 4, 2, 4, ..., 2, 4, 1 times h / 3; n must be even
function simpson(f::Function, a::Real, b::Real, n::Int)
    iseven(n) || throw(ArgumentError("n must be even"))
    h = (b - a) / n
    s = f(a) + f(b)
    for i in 1:n-1
        s += (isodd(i) ? 4 : 2) * f(a + i * h)
    end
    return s * h / 3
end
