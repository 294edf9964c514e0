# f(a) and f(b) must differ in sign; halve [a, b] until it is shorter than 2 * tol
function bisection(f::Function, a::Real, b::Real; tol=1e-10, maxiter=200)
    fa = f(a)
    fa * f(b) <= 0 || throw(ArgumentError("f(a) and f(b) must differ in sign"))
    for _ in 1:maxiter
        m = (a + b) / 2
        fm = f(m)
        if fm == 0 || abs(b - a) / 2 < tol
            return m
        end
        if sign(fm) == sign(fa)
            a, fa = m, fm
        else
            b = m
        end
    end
    return (a + b) / 2
end
