# (f(x + h) - f(x - h)) / 2h has error O(h^2)
function derivative(f::Function, x::Real, h::Real=1e-5)
    return (f(x + h) - f(x - h)) / (2 * h)
end
