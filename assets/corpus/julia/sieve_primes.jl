# Cross out multiples of each prime p starting at p^2; the survivors are prime
function sieve(n::Int)
    n < 2 && return Int[]
    is_prime = trues(n)
    is_prime[1] = false
    for p in 2:isqrt(n)
        if is_prime[p]
            for m in p*p:p:n
                is_prime[m] = false
            end
        end
    end
    return findall(is_prime)
end
