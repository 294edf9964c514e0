# One velocity Verlet step of size dt; returns the new position and velocity
function verlet_step(x, v, a::Function, dt::Real)
    acc = a(x)
    xnew = x + v * dt + 0.5 * acc * dt^2
    vnew = v + 0.5 * (acc + a(xnew)) * dt
    return xnew, vnew
end
