# Iterate (a, b) -> (b, a + b) n times from F(0) = 0 and F(1) = 1
function fibonacci(n::Int)
    n >= 0 || throw(ArgumentError("n must be non-negative"))
    a, b = 0, 1
    for _ in 1:n
        a, b = b, a + b
    end
    return a
end
