# A must be symmetric positive definite; stops when the residual norm is below tol
function conjugate_gradient(A::Matrix{Float64}, b::Vector{Float64}; tol=1e-10, maxiter=10 * length(b))
    x = zeros(length(b))
    r = copy(b)
    p = copy(r)
    rs = sum(r .* r)
    for _ in 1:maxiter
        if sqrt(rs) < tol
            break
        end
        Ap = A * p
        alpha = rs / sum(p .* Ap)
        x .+= alpha .* p
        r .-= alpha .* Ap
        rsnew = sum(r .* r)
        p .= r .+ (rsnew / rs) .* p
        rs = rsnew
    end
    return x
end
