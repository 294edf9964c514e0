# X[k] = sum over j of x[j] * exp(-2 pi i (j - 1)(k - 1) / n) with 1-based j and k
function dft(x::Vector{Float64})
    n = length(x)
    X = zeros(ComplexF64, n)
    for k in 1:n
        for j in 1:n
            X[k] += x[j] * exp(-2im * pi * (j - 1) * (k - 1) / n)
        end
    end
    return X
end
