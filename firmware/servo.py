"""One virtual servo: its control table (EEPROM + RAM), the vendor rules that guard it, and a
physical joint (goal -> present at a speed limit; a hand moves it while torque is off).

Every address, size and sign comes from the servo model loaded by `edgevla.hardware`; this
module only knows register *names*. Vendor differences that are not byte layout (how EEPROM is
guarded, the sign of the homing offset, what happens to an out-of-range goal) are the model's
`rules` (hardware/vendors.yaml), which the drivers read too.
"""

from __future__ import annotations

import enum
import math

from edgevla.hardware import Register, ServoModel

# Dynamixel velocity unit: 0.229 rev/min, in encoder counts per second at 4096 counts/turn.
DXL_VELOCITY_UNIT = 0.229 * 4096 / 60
# Dynamixel extended position mode (4) range, in counts.
DXL_EXTENDED_LIMIT = 1_048_575


class WriteResult(enum.Enum):
    OK = "ok"
    ACCESS = "access"  # read-only register, or EEPROM while torque is on (Dynamixel)
    RANGE = "range"  # address outside the control table
    LIMIT = "limit"  # value outside the register's limits (Dynamixel goal position)


class Condition(enum.IntFlag):
    """Physical alarms, as bits of Feetech's status error byte / Dynamixel's Hardware_Error_Status."""

    VOLTAGE = 1
    ANGLE_SENSOR = 2  # Feetech "angle sensor"; Dynamixel bit 1 is unused
    OVERHEAT = 4
    OVERCURRENT = 8  # Feetech over-current; Dynamixel bit 3 is "motor encoder"
    OVERLOAD = 32


# Registers the firmware computes from the joint's physical state (see `_refresh`).
LIVE_REGISTERS = frozenset(
    {
        "Present_Position",
        "Present_Velocity",
        "Present_Load",
        "Present_Current",
        "Present_Temperature",
        "Present_Voltage",
        "Present_Input_Voltage",
        "Moving",
        "Moving_Status",
        "Status",
        "Hardware_Error_Status",
        "Registered_Instruction",
        "Realtime_Tick",
    }
)


def _overlaps(reg: Register, address: int, length: int) -> bool:
    return reg.address < address + length and address < reg.address + reg.size


class VirtualServo:
    """A servo's control table and joint. Not thread-safe: `VirtualBus` serialises access."""

    def __init__(self, model: ServoModel, now: float):
        self.model = model
        self.rules = model.rules
        self.byteorder = model.rules.byteorder(model.protocol)
        last = max(r.address + r.size for r in model.registers.values())
        self.table_size = 256 if model.vendor == "feetech" else last
        self.mem = bytearray(self.table_size)
        self.flash = self._factory_image()  # what survives a power cycle
        # Physical state (settable by tests to provoke alarms).
        self.temperature_c = float(model.physics.get("temperature_c", 30))
        self.voltage_dv = float(model.physics.get("voltage_decivolts", 74))
        self.blocked = False  # an obstacle holds the joint: it cannot reach its goal -> overload
        self.injected = Condition(0)  # alarms forced on by a test (e.g. Condition.ANGLE_SENSOR)
        self.actual = model.resolution / 2  # raw encoder counts, before any homing offset
        self.velocity = 0.0  # counts/s
        self.hardware_error = 0  # Dynamixel latched alarm bits (cleared by reboot)
        self.pending: tuple[int, bytes] | None = None  # REG_WRITE waiting for ACTION
        self._t = now
        self._stale = True  # live registers need a refresh before the next read
        self.power_on(now)

    # --- lifecycle -------------------------------------------------------------------------

    def _factory_image(self) -> bytearray:
        image = bytearray(self.table_size)
        values = {"Model_Number": self.model.model_number, **self.model.factory}
        for name, value in values.items():
            self._put(image, self.model.register(name), value)
        return image

    def power_on(self, now: float) -> None:
        """Boot: EEPROM from flash, RAM from factory defaults, Goal_Position := Present_Position."""
        self.mem[:] = self._factory_image()
        end = self.model.eeprom_end
        self.mem[:end] = self.flash[:end]
        self.pending, self.hardware_error, self.velocity, self._t = None, 0, 0.0, now
        self._refresh()
        self.set("Goal_Position", self.get("Present_Position"))

    def factory_reset(self, now: float, keep_id: bool = True, keep_baud: bool = False) -> None:
        ident, baud = self.get("ID"), self.get("Baud_Rate")
        self.flash = self._factory_image()
        if keep_id:
            self._put(self.flash, self.model.register("ID"), ident)
        if keep_baud:
            self._put(self.flash, self.model.register("Baud_Rate"), baud)
        self.power_on(now)

    # --- typed access (firmware internals and tests; no vendor rules) ------------------------

    def _put(self, buf: bytearray, reg: Register, value: int) -> None:
        buf[reg.address : reg.address + reg.size] = reg.encode(value).to_bytes(reg.size, self.byteorder)

    def get(self, name: str) -> int:
        if self._stale and name in LIVE_REGISTERS:
            self._refresh()
        reg = self.model.register(name)
        raw = int.from_bytes(self.mem[reg.address : reg.address + reg.size], self.byteorder)
        return reg.decode(raw)

    def set(self, name: str, value: int) -> None:
        self._put(self.mem, self.model.register(name), value)

    def has(self, name: str) -> bool:
        return name in self.model.registers

    @property
    def id(self) -> int:
        return self.get("ID")

    @property
    def baudrate(self) -> int:
        return self.model.baud_rates.get(self.get("Baud_Rate"), -1)

    @property
    def return_delay_s(self) -> float:
        return self.get("Return_Delay_Time") * 2e-6  # both vendors: units of 2 us

    @property
    def status_level(self) -> int:
        return self.get(self.rules.status_level)

    @property
    def torque(self) -> bool:
        return self.get("Torque_Enable") == 1

    @property
    def present_position(self) -> int:
        return self.get("Present_Position")

    @property
    def goal_position(self) -> int:
        return self.get("Goal_Position")

    # --- wire access (vendor rules apply) ----------------------------------------------------

    def read(self, address: int, length: int) -> bytes | None:
        """Bytes of the control table, or None when the range leaves the table."""
        if address < 0 or length < 0 or address + length > self.table_size:
            return None
        if self._stale:  # a write since the last refresh may change what Present_* shows
            self._refresh()
        return bytes(self.mem[address : address + length])

    def write(self, address: int, data: bytes) -> WriteResult:
        if address + len(data) > self.table_size:
            return WriteResult.RANGE
        touched = [r for r in self.model.registers.values() if _overlaps(r, address, len(data))]
        staged = bytearray(self.mem)
        staged[address : address + len(data)] = data
        read_only = [r for r in touched if not r.writable]
        if read_only:
            if self.rules.vendor == "dynamixel":
                return WriteResult.ACCESS
            for reg in read_only:  # Feetech silently keeps read-only bytes
                staged[reg.address : reg.address + reg.size] = self.mem[reg.address : reg.address + reg.size]
        eeprom = address < self.model.eeprom_end
        if eeprom and self.rules.eeprom_guard == "torque" and self.torque:
            return WriteResult.ACCESS
        if any(r.name == "Goal_Position" for r in touched) and not self._goal_allowed(staged):
            return WriteResult.LIMIT
        torque_before = self.get("Torque_Enable")
        self.mem[:] = staged
        self._stale = True
        # Feetech: EEPROM writes always take effect now, but reach flash only with Lock = 0.
        if eeprom and (self.rules.eeprom_guard == "torque" or self.get("Lock") == 0):
            end = min(address + len(data), self.model.eeprom_end)
            self.flash[address:end] = self.mem[address:end]
        if any(r.name == "Torque_Enable" for r in touched):
            self._torque_written(torque_before)
        return WriteResult.OK

    def _goal_allowed(self, staged: bytearray) -> bool:
        if not self.rules.refuse_out_of_limit_goal:
            return True
        reg = self.model.register("Goal_Position")
        goal = reg.decode(int.from_bytes(staged[reg.address : reg.address + reg.size], self.byteorder))
        if self.get("Operating_Mode") in (4, 5):  # extended / current-based position: multi-turn
            return -DXL_EXTENDED_LIMIT <= goal <= DXL_EXTENDED_LIMIT
        return self.get("Min_Position_Limit") <= goal <= self.get("Max_Position_Limit")

    def _torque_written(self, before: int) -> None:
        value = self.get("Torque_Enable")
        if self.rules.vendor == "feetech" and value == 128 and self.has("Homing_Offset"):
            # STS "set middle": the current position becomes resolution/2 via the homing offset.
            offset = round(self.actual) - self.model.resolution // 2
            self.set("Homing_Offset", offset)
            if self.get("Lock") == 0:
                self._put(self.flash, self.model.register("Homing_Offset"), offset)
            self.set("Torque_Enable", before)
        elif value not in (0, 1):
            self.set("Torque_Enable", before)
        elif value == 1 and self._shut_down():
            self.set("Torque_Enable", 0)  # an alarm that unloads the motor keeps torque off

    # --- physics -----------------------------------------------------------------------------

    def conditions(self) -> Condition:
        """Alarms that hold right now, from the physical state and the limit registers."""
        found = self.injected
        volts = self.voltage_dv
        if not self.get("Min_Voltage_Limit") <= volts <= self.get("Max_Voltage_Limit"):
            found |= Condition.VOLTAGE
        limit = "Max_Temperature_Limit" if self.has("Max_Temperature_Limit") else "Temperature_Limit"
        if self.temperature_c > self.get(limit):
            found |= Condition.OVERHEAT
        if self.blocked and self.torque:
            found |= Condition.OVERLOAD
        return found

    def _shut_down(self) -> bool:
        """Whether an alarm unloads the motor (Feetech Unloading_Condition / Dynamixel Shutdown)."""
        if self.rules.vendor == "dynamixel":
            return bool(self.hardware_error & self.get("Shutdown"))
        mask = self.get("Unloading_Condition") if self.has("Unloading_Condition") else 0
        return bool(self.conditions() & mask)

    def error_bits(self) -> int:
        """Feetech: the alarm bits of the status packet's error byte. Dynamixel: latched alarms."""
        if self.rules.vendor == "dynamixel":
            return self.hardware_error
        return int(self.conditions())

    def speed_limit(self) -> float:
        top = float(self.model.physics.get("max_speed_counts_per_s", 3000))
        if self.rules.vendor == "feetech":
            asked = abs(self.get("Goal_Velocity")) if self.has("Goal_Velocity") else 0
        else:
            asked = self.get("Profile_Velocity") * DXL_VELOCITY_UNIT if self.has("Profile_Velocity") else 0
        return min(top, asked) if asked > 0 else top

    def goal_actual(self) -> float:
        """The raw encoder position the motor drives to, from Goal_Position (in present units)."""
        goal = self.goal_position
        res = self.model.resolution
        if self.rules.vendor == "feetech":
            low, high = self.get("Min_Position_Limit"), self.get("Max_Position_Limit")
            if low < high:
                goal = min(max(goal, low), high)
            return float((goal - self.rules.homing_sign * self._homing_offset()) % res)
        sign = -1 if self.get("Drive_Mode") & 1 else 1
        return float(sign * (goal - self._homing_offset()))

    def _homing_offset(self) -> int:
        return self.get("Homing_Offset") if self.has("Homing_Offset") else 0  # SCS0009 has none

    def _present_from_actual(self) -> int:
        offset = self.rules.homing_sign * self._homing_offset()
        if self.rules.wrap_position:
            return (round(self.actual) + offset) % self.model.resolution
        sign = -1 if self.get("Drive_Mode") & 1 else 1
        return sign * round(self.actual) + offset

    def advance(self, now: float, hand: float | None) -> None:
        """Move the joint to time `now`: the motor drives it when torque is on, else the hand does."""
        self._stale = True  # physical attributes (actual, temperature_c, ...) may have been set
        dt = now - self._t
        if dt <= 0:
            return
        self._t = now
        if self.rules.vendor == "dynamixel":
            self.hardware_error |= int(self.conditions())
        if self.torque and self._shut_down():
            self.set("Torque_Enable", 0)
        if self.torque:
            target = self.goal_actual()
            step = self.speed_limit() * dt
            if self.blocked or abs(target - self.actual) <= step:
                # arrived (or stalled) within the step: what a read sees now is a joint at rest
                self.actual, self.velocity = (self.actual if self.blocked else target), 0.0
            else:
                self.velocity = math.copysign(self.speed_limit(), target - self.actual)
                self.actual += math.copysign(step, target - self.actual)
        elif hand is not None:
            before = self.actual
            self.actual = hand % self.model.resolution if self.rules.wrap_position else hand
            self.velocity = (self.actual - before) / dt
        else:
            self.velocity = 0.0
        self._stale = True

    def _refresh(self) -> None:
        """Write the live registers (position, velocity, load, voltage, ...) into the table."""
        self._stale = False
        self.set("Present_Position", self._present_from_actual())
        top = float(self.model.physics.get("max_speed_counts_per_s", 3000))
        effort, moving = 0.0, abs(self.velocity) > 1.0
        if self.torque:
            error = self.goal_actual() - self.actual
            effort = 1.0 if self.blocked else min(1.0, 0.1 + 0.4 * abs(self.velocity) / top)
            effort = math.copysign(effort, error)
            moving = moving or (not self.blocked and abs(error) > 0.5)
        live = {
            "Present_Temperature": round(self.temperature_c),
            self.rules.voltage: round(self.voltage_dv),
            "Moving": int(moving),
        }
        if self.rules.vendor == "feetech":
            live["Present_Velocity"] = max(-32767, min(32767, round(self.velocity)))
            live["Present_Load"] = round(effort * 1000)
            live["Present_Current"] = round(abs(effort) * 200)
            live["Status"] = self.error_bits()
        else:
            live["Present_Velocity"] = round(self.velocity / DXL_VELOCITY_UNIT)
            live["Present_Current"] = (
                round(effort * self.get("Current_Limit")) if self.has("Current_Limit") else 0
            )
            live["Present_Load"] = round(effort * 1000)
            live["Hardware_Error_Status"] = self.hardware_error
            live["Registered_Instruction"] = int(self.pending is not None)
            live["Moving_Status"] = moving << 1 | int(not moving)  # bit1 profile ongoing, bit0 in position
            live["Realtime_Tick"] = int(self._t * 1000) % 32768
        for name, value in live.items():
            if self.has(name):
                self.set(name, value)
