# Composite rule: endpoints weighted 1/2, interior points weighted 1, times h
function trapezoid(f::Function, a::Real, b::Real, n::Int)
    h = (b - a) / n
    s = (f(a) + f(b)) / 2
    for i in 1:n-1
        s += f(a + i * h)
    end
    return s * h
end
